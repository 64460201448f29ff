
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
            cand gen-ca 'Create a root or intermediate certificate authority'
            cand gen-server-cert 'Issue a TLS server certificate (for a broker) signed by a CA'
            cand gen-client-cert 'Issue a TLS client certificate (for a device) signed by a CA'
            cand gen-crl 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)'
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
        &'mqsec;gen-ca'= {
            cand --out 'Directory to write the CA into (created 0700 if missing)'
            cand --cn 'Common name of the CA [default: "mqsec Root CA <random>"]'
            cand --days 'Validity in days'
            cand --key-type 'Key type of the CA key'
            cand --ca 'Parent CA directory (with --intermediate)'
            cand --path-len 'How many intermediate levels may follow below this CA [default: 1 for a root, the parent''s minus one for an intermediate]'
            cand --intermediate 'Make an intermediate CA signed by the CA in --ca'
            cand --force 'Replace an existing CA in DIR (its index and CRL are reset)'
            cand --json 'Print JSON instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;gen-server-cert'= {
            cand --ca 'CA directory (made by gen-ca)'
            cand --out 'Directory to write NAME.crt and NAME.key into (created 0700 if missing)'
            cand --name 'File name and common name of the certificate'
            cand --dns 'DNS name the server is reached by (repeatable)'
            cand --ip 'IP address the server is reached by (repeatable)'
            cand --days 'Validity in days (at most 397 without --allow-long-validity)'
            cand --key-type 'Key type of the new key'
            cand --allow-long-validity 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA''s end'
            cand --force 'Replace existing NAME.crt/NAME.key'
            cand --json 'Print JSON instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;gen-client-cert'= {
            cand --ca 'CA directory (made by gen-ca)'
            cand --out 'Directory to write CN.crt and CN.key into (created 0700 if missing)'
            cand --name 'Common name: the device''s identity (username with use_identity_as_username) and file name'
            cand --days 'Validity in days (at most 397 without --allow-long-validity)'
            cand --key-type 'Key type of the new key'
            cand --p12 'Also write CN.p12, a password-protected PKCS#12 bundle (password from prompt or stdin)'
            cand --allow-long-validity 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA''s end'
            cand --force 'Replace existing NAME.crt/NAME.key'
            cand --json 'Print JSON instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;gen-crl'= {
            cand --ca 'CA directory (made by gen-ca)'
            cand --revoke 'Revoke the certificate in this PEM file (repeatable; it must be issued by this CA)'
            cand --revoke-serial 'Revoke by serial number in hex, as printed at issuance (repeatable; colons allowed)'
            cand --crl-days 'Days until the CRL''s nextUpdate (re-run gen-crl before then)'
            cand --json 'Print JSON instead of text'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;help'= {
            cand passwd 'Manage password files: add, delete, list, verify, check, import'
            cand gen-ca 'Create a root or intermediate certificate authority'
            cand gen-server-cert 'Issue a TLS server certificate (for a broker) signed by a CA'
            cand gen-client-cert 'Issue a TLS client certificate (for a device) signed by a CA'
            cand gen-crl 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)'
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
        &'mqsec;help;gen-ca'= {
        }
        &'mqsec;help;gen-server-cert'= {
        }
        &'mqsec;help;gen-client-cert'= {
        }
        &'mqsec;help;gen-crl'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
