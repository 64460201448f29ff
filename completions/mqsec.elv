
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
            cand keygen 'Create a payload key file, or add a key to one (rotation)'
            cand encrypt-payload 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
            cand decrypt-payload 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
            cand sign-payload 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
            cand verify-payload 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;keygen'= {
            cand --out 'The key file to write (created mode 0600, replaced atomically)'
            cand --id 'The new key''s id: 1-32 of A-Z a-z 0-9 . _ - (default: 16 random hex characters)'
            cand --add 'Append a new key to an existing file; it becomes the key that encrypts'
            cand --force 'Replace an existing file (its keys are lost: old envelopes will no longer open)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;encrypt-payload'= {
            cand --key 'Key file (see `mqsec keygen`); its newest key is used'
            cand --topic 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)'
            cand --in 'Read the payload from FILE instead of stdin'
            cand --out 'Write the envelope to FILE (atomically) instead of stdout'
            cand --base64 'Write the envelope as one line of standard padded base64 (plus a newline)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;decrypt-payload'= {
            cand --key 'Key file (see `mqsec keygen`); the envelope''s key id picks the key'
            cand --topic 'The topic the envelope must be bound to (required exactly when it was sealed with one)'
            cand --max-age 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future'
            cand --in 'Read the envelope from FILE instead of stdin'
            cand --out 'Write the payload to FILE (atomically, mode 0600) instead of stdout'
            cand --base64 'The input is base64 (one line; surrounding whitespace ignored)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;sign-payload'= {
            cand --key 'Key file (see `mqsec keygen`); its newest key is used'
            cand --topic 'Bind the envelope to this MQTT topic (the receiver must give the same --topic)'
            cand --in 'Read the payload from FILE instead of stdin'
            cand --out 'Write the envelope to FILE (atomically) instead of stdout'
            cand --base64 'Write the envelope as one line of standard padded base64 (plus a newline)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;verify-payload'= {
            cand --key 'Key file (see `mqsec keygen`); the envelope''s key id picks the key'
            cand --topic 'The topic the envelope must be bound to (required exactly when it was sealed with one)'
            cand --max-age 'Refuse envelopes older than this (30s, 5m, 2h, 1d) or more than 5 minutes in the future'
            cand --in 'Read the envelope from FILE instead of stdin'
            cand --out 'Write the payload to FILE (atomically, mode 0600) instead of stdout'
            cand --base64 'The input is base64 (one line; surrounding whitespace ignored)'
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
            cand keygen 'Create a payload key file, or add a key to one (rotation)'
            cand encrypt-payload 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
            cand decrypt-payload 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
            cand sign-payload 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
            cand verify-payload 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;help;keygen'= {
        }
        &'mqsec;help;encrypt-payload'= {
        }
        &'mqsec;help;decrypt-payload'= {
        }
        &'mqsec;help;sign-payload'= {
        }
        &'mqsec;help;verify-payload'= {
        }
        &'mqsec;help;version'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
