
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'mqsec' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'mqsec'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'mqsec' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('acl-check', 'acl-check', [CompletionResultType]::ParameterValue, 'Check topics against an ACL file, or lint it')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version and build details')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;acl-check' {
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'The client''s username; omit it for an anonymous client')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'The client''s username; omit it for an anonymous client')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'The client id (%c in patterns); empty by default, and then %c patterns never match')
            [CompletionResult]::new('--client-id', '--client-id', [CompletionResultType]::ParameterName, 'The client id (%c in patterns); empty by default, and then %c patterns never match')
            [CompletionResult]::new('-a', '-a', [CompletionResultType]::ParameterName, 'What the client wants to do')
            [CompletionResult]::new('--access', '--access', [CompletionResultType]::ParameterName, 'What the client wants to do')
            [CompletionResult]::new('--qos', '--qos', [CompletionResultType]::ParameterName, 'QoS of the publish or delivery (checked against max_qos=)')
            [CompletionResult]::new('--role', '--role', [CompletionResultType]::ParameterName, 'Extra role for the client, as a token would grant it (repeatable)')
            [CompletionResult]::new('--queries', '--queries', [CompletionResultType]::ParameterName, 'JSON lines of queries: {"username", "client_id", "access", "topic", "qos", "retain", "roles"}')
            [CompletionResult]::new('--retain', '--retain', [CompletionResultType]::ParameterName, 'The message is retained (checked against retain=false)')
            [CompletionResult]::new('--lint', '--lint', [CompletionResultType]::ParameterName, 'Lint the file instead of answering queries (exit 1 on error-level findings)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object per line instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;version' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;help' {
            [CompletionResult]::new('acl-check', 'acl-check', [CompletionResultType]::ParameterValue, 'Check topics against an ACL file, or lint it')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version and build details')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;help;acl-check' {
            break
        }
        'mqsec;help;version' {
            break
        }
        'mqsec;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
