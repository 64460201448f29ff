
use builtin;
use str;

set edit:completion:arg-completer[mqsec] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'mqsec'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'mqsec'= {
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand passwd 'Manage password files: add, delete, list, verify, check, import'
            cand audit 'Probe MQTT brokers for TLS, certificate and access-control weaknesses'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;passwd'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand add 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
            cand delete 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
            cand list 'List users with their hash scheme and a warning for weak or legacy hashes'
            cand verify 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
            cand check 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
            cand import 'Hash a clear-text `USER:PASSWORD` file into a new password file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;passwd;add'= {
            cand --memory-kib 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)'
            cand --iterations 'argon2id iterations (time cost)'
            cand --parallelism 'argon2id parallelism (lanes)'
            cand --allow-weak-params 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;delete'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;list'= {
            cand --json 'One JSON array of {line, user, scheme, params, warning}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;verify'= {
            cand --memory-kib 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)'
            cand --iterations 'argon2id iterations (time cost)'
            cand --parallelism 'argon2id parallelism (lanes)'
            cand --upgrade 'On a match, rewrite a legacy or weaker hash as argon2id (the file is locked and updated)'
            cand --allow-weak-params 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;check'= {
            cand --fail-on 'Lowest severity that makes the exit code 1'
            cand --json 'One JSON object {file, users, findings: [{line, severity, message}]}'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;import'= {
            cand --memory-kib 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)'
            cand --iterations 'argon2id iterations (time cost)'
            cand --parallelism 'argon2id parallelism (lanes)'
            cand --force 'Replace OUT if it exists'
            cand --allow-weak-params 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;passwd;help'= {
            cand add 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
            cand delete 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
            cand list 'List users with their hash scheme and a warning for weak or legacy hashes'
            cand verify 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
            cand check 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
            cand import 'Hash a clear-text `USER:PASSWORD` file into a new password file'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;passwd;help;add'= {
        }
        &'mqsec;passwd;help;delete'= {
        }
        &'mqsec;passwd;help;list'= {
        }
        &'mqsec;passwd;help;verify'= {
        }
        &'mqsec;passwd;help;check'= {
        }
        &'mqsec;passwd;help;import'= {
        }
        &'mqsec;passwd;help;help'= {
        }
        &'mqsec;audit'= {
            cand --format 'Output format. JSON and SARIF never show a progress bar'
            cand --fail-on 'Exit 1 when any finding is at or above this severity'
            cand --timeout 'Seconds allowed for each connect and each read of every probe'
            cand --warn-days 'Report a certificate that expires within this many days'
            cand --cafile 'Trust these CA certificates (PEM) instead of the system roots'
            cand --also 'Also try this port of the same host (plaintext MQTT beside TLS); repeatable'
            cand --ws 'Audit MQTT over WebSocket at this path (wss:// when the port speaks TLS)'
            cand --username 'Audit what this identity can do; password from MQSEC_PASSWORD or --password-stdin'
            cand --wordlist 'Try `user:password` lines from FILE (rate-limited; stops at the first success)'
            cand --wordlist-delay-ms 'Milliseconds between two wordlist attempts'
            cand --password-stdin 'Read the password for --username from one line of standard input'
            cand --active 'Allow probes that publish (with --username or anonymous access)'
            cand --show-payloads 'Show retained message payloads (off: only topic names are reported)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;version'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;help'= {
            cand passwd 'Manage password files: add, delete, list, verify, check, import'
            cand audit 'Probe MQTT brokers for TLS, certificate and access-control weaknesses'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;help;passwd'= {
            cand add 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
            cand delete 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
            cand list 'List users with their hash scheme and a warning for weak or legacy hashes'
            cand verify 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
            cand check 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
            cand import 'Hash a clear-text `USER:PASSWORD` file into a new password file'
        }
        &'mqsec;help;passwd;add'= {
        }
        &'mqsec;help;passwd;delete'= {
        }
        &'mqsec;help;passwd;list'= {
        }
        &'mqsec;help;passwd;verify'= {
        }
        &'mqsec;help;passwd;check'= {
        }
        &'mqsec;help;passwd;import'= {
        }
        &'mqsec;help;audit'= {
        }
        &'mqsec;help;version'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
