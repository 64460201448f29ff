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
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "keygen" -d 'Create a payload key file, or add a key to one (rotation)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "encrypt-payload" -d 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "decrypt-payload" -d 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "sign-payload" -d 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "verify-payload" -d 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "version" -d 'Print the version and build details'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -l out -d 'The key file to write (created mode 0600, replaced atomically)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -l id -d 'The new key\'s id: 1-32 of A-Z a-z 0-9 . _ - (default: 16 random hex characters)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -l add -d 'Append a new key to an existing file; it becomes the key that encrypts'
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -l force -d 'Replace an existing file (its keys are lost: old envelopes will no longer open)'
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand keygen" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -l key -d 'Key file (see `mqsec keygen`); its newest key is used' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -l topic -d 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -l in -d 'Read the payload from FILE instead of stdin' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -l out -d 'Write the envelope to FILE (atomically) instead of stdout' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -l base64 -d 'Write the envelope as one line of standard padded base64 (plus a newline)'
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand encrypt-payload" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l key -d 'Key file (see `mqsec keygen`); the envelope\'s key id picks the key' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l topic -d 'The topic the envelope must be bound to (required exactly when it was sealed with one)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l max-age -d 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l in -d 'Read the envelope from FILE instead of stdin' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l out -d 'Write the payload to FILE (atomically, mode 0600) instead of stdout' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -l base64 -d 'The input is base64 (one line; surrounding whitespace ignored)'
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand decrypt-payload" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -l key -d 'Key file (see `mqsec keygen`); its newest key is used' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -l topic -d 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -l in -d 'Read the payload from FILE instead of stdin' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -l out -d 'Write the envelope to FILE (atomically) instead of stdout' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -l base64 -d 'Write the envelope as one line of standard padded base64 (plus a newline)'
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand sign-payload" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l key -d 'Key file (see `mqsec keygen`); the envelope\'s key id picks the key' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l topic -d 'The topic the envelope must be bound to (required exactly when it was sealed with one)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l max-age -d 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l in -d 'Read the envelope from FILE instead of stdin' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l out -d 'Write the payload to FILE (atomically, mode 0600) instead of stdout' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -l base64 -d 'The input is base64 (one line; surrounding whitespace ignored)'
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand verify-payload" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand version" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand version" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "keygen" -d 'Create a payload key file, or add a key to one (rotation)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "encrypt-payload" -d 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "decrypt-payload" -d 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "sign-payload" -d 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "verify-payload" -d 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "version" -d 'Print the version and build details'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from keygen encrypt-payload decrypt-payload sign-payload verify-payload version help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
