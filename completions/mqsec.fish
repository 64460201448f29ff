# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mqsec_global_optspecs
    string join \n h/help V/version
end

function __fish_mqsec_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mqsec_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mqsec_using_subcommand
    set -l cmd (__fish_mqsec_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mqsec -n "__fish_mqsec_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mqsec -n "__fish_mqsec_needs_command" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "acl-check" -d 'Check topics against an ACL file, or lint it'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "version" -d 'Print the version and build details'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s u -l username -d 'The client\'s username; omit it for an anonymous client' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s i -l client-id -d 'The client id (%c in patterns); empty by default, and then %c patterns never match' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s a -l access -d 'What the client wants to do' -r -f -a "read\t''
write\t''
subscribe\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l qos -d 'QoS of the publish or delivery (checked against max_qos=)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l role -d 'Extra role for the client, as a token would grant it (repeatable)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l queries -d 'JSON lines of queries: {"username", "client_id", "access", "topic", "qos", "retain", "roles"}' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l retain -d 'The message is retained (checked against retain=false)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l lint -d 'Lint the file instead of answering queries (exit 1 on error-level findings)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l json -d 'One JSON object per line instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand version" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand version" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from acl-check version help" -f -a "acl-check" -d 'Check topics against an ACL file, or lint it'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from acl-check version help" -f -a "version" -d 'Print the version and build details'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from acl-check version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
