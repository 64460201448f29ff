
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
            [CompletionResult]::new('keygen', 'keygen', [CompletionResultType]::ParameterValue, 'Create a payload key file, or add a key to one (rotation)')
            [CompletionResult]::new('encrypt-payload', 'encrypt-payload', [CompletionResultType]::ParameterValue, 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic')
            [CompletionResult]::new('decrypt-payload', 'decrypt-payload', [CompletionResultType]::ParameterValue, 'Decrypt and authenticate an envelope; nothing is written unless it verifies')
            [CompletionResult]::new('sign-payload', 'sign-payload', [CompletionResultType]::ParameterValue, 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)')
            [CompletionResult]::new('verify-payload', 'verify-payload', [CompletionResultType]::ParameterValue, 'Verify a signed envelope and write its payload; nothing is written unless it verifies')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version and build details')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;keygen' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'The key file to write (created mode 0600, replaced atomically)')
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'The new key''s id: 1-32 of A-Z a-z 0-9 . _ - (default: 16 random hex characters)')
            [CompletionResult]::new('--add', '--add', [CompletionResultType]::ParameterName, 'Append a new key to an existing file; it becomes the key that encrypts')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing file (its keys are lost: old envelopes will no longer open)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;encrypt-payload' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Key file (see `mqsec keygen`); its newest key is used')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)')
            [CompletionResult]::new('--in', '--in', [CompletionResultType]::ParameterName, 'Read the payload from FILE instead of stdin')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write the envelope to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--base64', '--base64', [CompletionResultType]::ParameterName, 'Write the envelope as one line of standard padded base64 (plus a newline)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;decrypt-payload' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Key file (see `mqsec keygen`); the envelope''s key id picks the key')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'The topic the envelope must be bound to (required exactly when it was sealed with one)')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future')
            [CompletionResult]::new('--in', '--in', [CompletionResultType]::ParameterName, 'Read the envelope from FILE instead of stdin')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write the payload to FILE (atomically, mode 0600) instead of stdout')
            [CompletionResult]::new('--base64', '--base64', [CompletionResultType]::ParameterName, 'The input is base64 (one line; surrounding whitespace ignored)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;sign-payload' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Key file (see `mqsec keygen`); its newest key is used')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)')
            [CompletionResult]::new('--in', '--in', [CompletionResultType]::ParameterName, 'Read the payload from FILE instead of stdin')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write the envelope to FILE (atomically) instead of stdout')
            [CompletionResult]::new('--base64', '--base64', [CompletionResultType]::ParameterName, 'Write the envelope as one line of standard padded base64 (plus a newline)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;verify-payload' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'Key file (see `mqsec keygen`); the envelope''s key id picks the key')
            [CompletionResult]::new('--topic', '--topic', [CompletionResultType]::ParameterName, 'The topic the envelope must be bound to (required exactly when it was sealed with one)')
            [CompletionResult]::new('--max-age', '--max-age', [CompletionResultType]::ParameterName, 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future')
            [CompletionResult]::new('--in', '--in', [CompletionResultType]::ParameterName, 'Read the envelope from FILE instead of stdin')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Write the payload to FILE (atomically, mode 0600) instead of stdout')
            [CompletionResult]::new('--base64', '--base64', [CompletionResultType]::ParameterName, 'The input is base64 (one line; surrounding whitespace ignored)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
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
            [CompletionResult]::new('keygen', 'keygen', [CompletionResultType]::ParameterValue, 'Create a payload key file, or add a key to one (rotation)')
            [CompletionResult]::new('encrypt-payload', 'encrypt-payload', [CompletionResultType]::ParameterValue, 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic')
            [CompletionResult]::new('decrypt-payload', 'decrypt-payload', [CompletionResultType]::ParameterValue, 'Decrypt and authenticate an envelope; nothing is written unless it verifies')
            [CompletionResult]::new('sign-payload', 'sign-payload', [CompletionResultType]::ParameterValue, 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)')
            [CompletionResult]::new('verify-payload', 'verify-payload', [CompletionResultType]::ParameterValue, 'Verify a signed envelope and write its payload; nothing is written unless it verifies')
            [CompletionResult]::new('version', 'version', [CompletionResultType]::ParameterValue, 'Print the version and build details')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;help;keygen' {
            break
        }
        'mqsec;help;encrypt-payload' {
            break
        }
        'mqsec;help;decrypt-payload' {
            break
        }
        'mqsec;help;sign-payload' {
            break
        }
        'mqsec;help;verify-payload' {
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
