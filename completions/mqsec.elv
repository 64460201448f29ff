
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
            cand acl-check 'Check topics against an ACL file, or lint it'
            cand gen-ca 'Create a root or intermediate certificate authority'
            cand gen-server-cert 'Issue a TLS server certificate (for a broker) signed by a CA'
            cand gen-client-cert 'Issue a TLS client certificate (for a device) signed by a CA'
            cand gen-crl 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)'
            cand gen-token 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file'
            cand serve 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)'
            cand keygen 'Create a payload key file, or add a key to one (rotation)'
            cand encrypt-payload 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
            cand decrypt-payload 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
            cand sign-payload 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
            cand verify-payload 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
            cand audit 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)'
            cand auth-server 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec''s files'
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
        &'mqsec;acl-check'= {
            cand -u 'The client''s username; omit it for an anonymous client'
            cand --username 'The client''s username; omit it for an anonymous client'
            cand --token 'Answer for the client a token (JWT) names, with its acl and roles claims. The signature and times are not checked: the answer is what the token may do if the broker accepts it. Use /dev/null as ACL_FILE for a listener without acl_file'
            cand --username-claim 'With --token: the claim that names the client (the broker''s token_username_claim)'
            cand -i 'The client id (%c in patterns); empty by default, and then %c patterns never match'
            cand --client-id 'The client id (%c in patterns); empty by default, and then %c patterns never match'
            cand -a 'What the client wants to do'
            cand --access 'What the client wants to do'
            cand --qos 'QoS of the publish or delivery (checked against max_qos=)'
            cand --role 'Extra role for the client, as a token would grant it (repeatable)'
            cand --queries 'JSON lines of queries: {"username", "client_id", "access", "topic", "qos", "retain", "roles"}'
            cand --retain 'The message is retained (checked against retain=false)'
            cand --lint 'Lint the file instead of answering queries (exit 1 on error-level findings)'
            cand --json 'One JSON object per line instead of text'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
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
            cand --port 'Port of the TLS listener in the printed broker configuration'
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
            cand --broker 'The broker the printed client commands connect to: HOST, HOST:PORT or [IPV6]:PORT (it must be a name in the broker''s certificate) [default: localhost:8883]'
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
        &'mqsec;gen-token'= {
            cand --key 'The signing key: a secret file (HS*) or a private key PEM (RS*, PS*, ES*, EdDSA)'
            cand --alg 'Signature algorithm'
            cand --sub 'The username the token names (its sub claim, or --username-claim)'
            cand --aud 'Audience (aud): the broker''s token_audience'
            cand --iss 'Issuer (iss): the broker''s token_issuer'
            cand --acl-pub 'A topic filter the client may publish to (repeatable; %u and %c allowed)'
            cand --acl-sub 'A topic filter the client may subscribe to and receive from (repeatable)'
            cand --roles 'Roles of the broker''s ACL file (comma-separated or repeated)'
            cand --ttl 'Lifetime: 30s, 15m, 1h, 1d (at most 366d)'
            cand --kid 'Key id (kid) for a broker with token_jwks_file'
            cand --username-claim 'The claim that carries --sub (the broker''s token_username_claim)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;serve'= {
            cand -c 'Configuration file (mosquitto.conf syntax)'
            cand --config 'Configuration file (mosquitto.conf syntax)'
            cand --check 'Validate the configuration and exit: 0 valid, 2 invalid'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
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
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;auth-server'= {
            cand --password-file 'Password file (mosquitto_passwd / mqsec passwd format)'
            cand --acl-file 'ACL file (Mosquitto acl_file format, mqsec extensions allowed)'
            cand --listen 'Address and port to listen on (port 0: any free port, printed at start)'
            cand --certfile 'TLS certificate chain (PEM), e.g. from `mqsec gen-server-cert`'
            cand --keyfile 'TLS private key (PEM)'
            cand --rate-limit 'Requests per second from one source address (a broker node), bursts up to the same number; 0: no limit. Over it, the engine is told "deny"'
            cand --security-log 'Security events as JSON lines: `stderr` or a file'
            cand --rabbitmq-exchange 'RabbitMQ: the exchange the MQTT plugin publishes through (its mqtt.exchange)'
            cand --auth-workers 'Threads that verify passwords (0: one per core)'
            cand --token-conf 'Accept access tokens too: a file of `serve`''s `token_*` lines (token_key_file or token_jwks_file, token_algorithms, token_audience, ...). Re-read on SIGHUP'
            cand --check 'Validate the files (and TLS material) and exit: 0 valid, 2 invalid'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;help'= {
            cand passwd 'Manage password files: add, delete, list, verify, check, import'
            cand acl-check 'Check topics against an ACL file, or lint it'
            cand gen-ca 'Create a root or intermediate certificate authority'
            cand gen-server-cert 'Issue a TLS server certificate (for a broker) signed by a CA'
            cand gen-client-cert 'Issue a TLS client certificate (for a device) signed by a CA'
            cand gen-crl 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)'
            cand gen-token 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file'
            cand serve 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)'
            cand keygen 'Create a payload key file, or add a key to one (rotation)'
            cand encrypt-payload 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
            cand decrypt-payload 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
            cand sign-payload 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
            cand verify-payload 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
            cand audit 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)'
            cand auth-server 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec''s files'
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
        &'mqsec;help;acl-check'= {
        }
        &'mqsec;help;gen-ca'= {
        }
        &'mqsec;help;gen-server-cert'= {
        }
        &'mqsec;help;gen-client-cert'= {
        }
        &'mqsec;help;gen-crl'= {
        }
        &'mqsec;help;gen-token'= {
        }
        &'mqsec;help;serve'= {
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
        &'mqsec;help;audit'= {
        }
        &'mqsec;help;auth-server'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
