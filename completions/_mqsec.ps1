
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
            [CompletionResult]::new('passwd', 'passwd', [CompletionResultType]::ParameterValue, 'Manage password files: add, delete, list, verify, check, import')
            [CompletionResult]::new('acl-check', 'acl-check', [CompletionResultType]::ParameterValue, 'Check topics against an ACL file, or lint it')
            [CompletionResult]::new('gen-ca', 'gen-ca', [CompletionResultType]::ParameterValue, 'Create a root or intermediate certificate authority')
            [CompletionResult]::new('gen-server-cert', 'gen-server-cert', [CompletionResultType]::ParameterValue, 'Issue a TLS server certificate (for a broker) signed by a CA')
            [CompletionResult]::new('gen-client-cert', 'gen-client-cert', [CompletionResultType]::ParameterValue, 'Issue a TLS client certificate (for a device) signed by a CA')
            [CompletionResult]::new('gen-crl', 'gen-crl', [CompletionResultType]::ParameterValue, 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)')
            [CompletionResult]::new('gen-token', 'gen-token', [CompletionResultType]::ParameterValue, 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)')
            [CompletionResult]::new('keygen', 'keygen', [CompletionResultType]::ParameterValue, 'Create a payload key file, or add a key to one (rotation)')
            [CompletionResult]::new('encrypt-payload', 'encrypt-payload', [CompletionResultType]::ParameterValue, 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic')
            [CompletionResult]::new('decrypt-payload', 'decrypt-payload', [CompletionResultType]::ParameterValue, 'Decrypt and authenticate an envelope; nothing is written unless it verifies')
            [CompletionResult]::new('sign-payload', 'sign-payload', [CompletionResultType]::ParameterValue, 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)')
            [CompletionResult]::new('verify-payload', 'verify-payload', [CompletionResultType]::ParameterValue, 'Verify a signed envelope and write its payload; nothing is written unless it verifies')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)')
            [CompletionResult]::new('auth-server', 'auth-server', [CompletionResultType]::ParameterValue, 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec''s files')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;passwd' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user, or replace their password. Creates FILE (mode 0600) if missing')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Remove a user. Exit 1 (file unchanged) when the user is not in the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users with their hash scheme and a warning for weak or legacy hashes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Hash a clear-text `USER:PASSWORD` file into a new password file')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;passwd;add' {
            [CompletionResult]::new('--memory-kib', '--memory-kib', [CompletionResultType]::ParameterName, 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'argon2id iterations (time cost)')
            [CompletionResult]::new('--parallelism', '--parallelism', [CompletionResultType]::ParameterName, 'argon2id parallelism (lanes)')
            [CompletionResult]::new('--allow-weak-params', '--allow-weak-params', [CompletionResultType]::ParameterName, 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;delete' {
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;list' {
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON array of {line, user, scheme, params, warning}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;verify' {
            [CompletionResult]::new('--memory-kib', '--memory-kib', [CompletionResultType]::ParameterName, 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'argon2id iterations (time cost)')
            [CompletionResult]::new('--parallelism', '--parallelism', [CompletionResultType]::ParameterName, 'argon2id parallelism (lanes)')
            [CompletionResult]::new('--upgrade', '--upgrade', [CompletionResultType]::ParameterName, 'On a match, rewrite a legacy or weaker hash as argon2id (the file is locked and updated)')
            [CompletionResult]::new('--allow-weak-params', '--allow-weak-params', [CompletionResultType]::ParameterName, 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;check' {
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Lowest severity that makes the exit code 1')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'One JSON object {file, users, findings: [{line, severity, message}]}')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;import' {
            [CompletionResult]::new('--memory-kib', '--memory-kib', [CompletionResultType]::ParameterName, 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)')
            [CompletionResult]::new('--iterations', '--iterations', [CompletionResultType]::ParameterName, 'argon2id iterations (time cost)')
            [CompletionResult]::new('--parallelism', '--parallelism', [CompletionResultType]::ParameterName, 'argon2id parallelism (lanes)')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace OUT if it exists')
            [CompletionResult]::new('--allow-weak-params', '--allow-weak-params', [CompletionResultType]::ParameterName, 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;passwd;help' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user, or replace their password. Creates FILE (mode 0600) if missing')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Remove a user. Exit 1 (file unchanged) when the user is not in the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users with their hash scheme and a warning for weak or legacy hashes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Hash a clear-text `USER:PASSWORD` file into a new password file')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;passwd;help;add' {
            break
        }
        'mqsec;passwd;help;delete' {
            break
        }
        'mqsec;passwd;help;list' {
            break
        }
        'mqsec;passwd;help;verify' {
            break
        }
        'mqsec;passwd;help;check' {
            break
        }
        'mqsec;passwd;help;import' {
            break
        }
        'mqsec;passwd;help;help' {
            break
        }
        'mqsec;acl-check' {
            [CompletionResult]::new('-u', '-u', [CompletionResultType]::ParameterName, 'The client''s username; omit it for an anonymous client')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'The client''s username; omit it for an anonymous client')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Answer for the client a token (JWT) names, with its acl and roles claims. The signature and times are not checked: the answer is what the token may do if the broker accepts it. Use /dev/null as ACL_FILE for a listener without acl_file')
            [CompletionResult]::new('--username-claim', '--username-claim', [CompletionResultType]::ParameterName, 'With --token: the claim that names the client (the broker''s token_username_claim)')
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
        'mqsec;gen-ca' {
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Directory to write the CA into (created 0700 if missing)')
            [CompletionResult]::new('--cn', '--cn', [CompletionResultType]::ParameterName, 'Common name of the CA [default: "mqsec Root CA <random>"]')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'Validity in days')
            [CompletionResult]::new('--key-type', '--key-type', [CompletionResultType]::ParameterName, 'Key type of the CA key')
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'Parent CA directory (with --intermediate)')
            [CompletionResult]::new('--path-len', '--path-len', [CompletionResultType]::ParameterName, 'How many intermediate levels may follow below this CA [default: 1 for a root, the parent''s minus one for an intermediate]')
            [CompletionResult]::new('--intermediate', '--intermediate', [CompletionResultType]::ParameterName, 'Make an intermediate CA signed by the CA in --ca')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace an existing CA in DIR (its index and CRL are reset)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;gen-server-cert' {
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'CA directory (made by gen-ca)')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Directory to write NAME.crt and NAME.key into (created 0700 if missing)')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'File name and common name of the certificate')
            [CompletionResult]::new('--dns', '--dns', [CompletionResultType]::ParameterName, 'DNS name the server is reached by (repeatable)')
            [CompletionResult]::new('--ip', '--ip', [CompletionResultType]::ParameterName, 'IP address the server is reached by (repeatable)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port of the TLS listener in the printed broker configuration')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'Validity in days (at most 397 without --allow-long-validity)')
            [CompletionResult]::new('--key-type', '--key-type', [CompletionResultType]::ParameterName, 'Key type of the new key')
            [CompletionResult]::new('--allow-long-validity', '--allow-long-validity', [CompletionResultType]::ParameterName, 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA''s end')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace existing NAME.crt/NAME.key')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;gen-client-cert' {
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'CA directory (made by gen-ca)')
            [CompletionResult]::new('--out', '--out', [CompletionResultType]::ParameterName, 'Directory to write CN.crt and CN.key into (created 0700 if missing)')
            [CompletionResult]::new('--name', '--name', [CompletionResultType]::ParameterName, 'Common name: the device''s identity (username with use_identity_as_username) and file name')
            [CompletionResult]::new('--broker', '--broker', [CompletionResultType]::ParameterName, 'The broker the printed client commands connect to: HOST, HOST:PORT or [IPV6]:PORT (it must be a name in the broker''s certificate) [default: localhost:8883]')
            [CompletionResult]::new('--days', '--days', [CompletionResultType]::ParameterName, 'Validity in days (at most 397 without --allow-long-validity)')
            [CompletionResult]::new('--key-type', '--key-type', [CompletionResultType]::ParameterName, 'Key type of the new key')
            [CompletionResult]::new('--p12', '--p12', [CompletionResultType]::ParameterName, 'Also write CN.p12, a password-protected PKCS#12 bundle (password from prompt or stdin)')
            [CompletionResult]::new('--allow-long-validity', '--allow-long-validity', [CompletionResultType]::ParameterName, 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA''s end')
            [CompletionResult]::new('--force', '--force', [CompletionResultType]::ParameterName, 'Replace existing NAME.crt/NAME.key')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;gen-crl' {
            [CompletionResult]::new('--ca', '--ca', [CompletionResultType]::ParameterName, 'CA directory (made by gen-ca)')
            [CompletionResult]::new('--revoke', '--revoke', [CompletionResultType]::ParameterName, 'Revoke the certificate in this PEM file (repeatable; it must be issued by this CA)')
            [CompletionResult]::new('--revoke-serial', '--revoke-serial', [CompletionResultType]::ParameterName, 'Revoke by serial number in hex, as printed at issuance (repeatable; colons allowed)')
            [CompletionResult]::new('--crl-days', '--crl-days', [CompletionResultType]::ParameterName, 'Days until the CRL''s nextUpdate (re-run gen-crl before then)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print JSON instead of text')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;gen-token' {
            [CompletionResult]::new('--key', '--key', [CompletionResultType]::ParameterName, 'The signing key: a secret file (HS*) or a private key PEM (RS*, PS*, ES*, EdDSA)')
            [CompletionResult]::new('--alg', '--alg', [CompletionResultType]::ParameterName, 'Signature algorithm')
            [CompletionResult]::new('--sub', '--sub', [CompletionResultType]::ParameterName, 'The username the token names (its sub claim, or --username-claim)')
            [CompletionResult]::new('--aud', '--aud', [CompletionResultType]::ParameterName, 'Audience (aud): the broker''s token_audience')
            [CompletionResult]::new('--iss', '--iss', [CompletionResultType]::ParameterName, 'Issuer (iss): the broker''s token_issuer')
            [CompletionResult]::new('--acl-pub', '--acl-pub', [CompletionResultType]::ParameterName, 'A topic filter the client may publish to (repeatable; %u and %c allowed)')
            [CompletionResult]::new('--acl-sub', '--acl-sub', [CompletionResultType]::ParameterName, 'A topic filter the client may subscribe to and receive from (repeatable)')
            [CompletionResult]::new('--roles', '--roles', [CompletionResultType]::ParameterName, 'Roles of the broker''s ACL file (comma-separated or repeated)')
            [CompletionResult]::new('--ttl', '--ttl', [CompletionResultType]::ParameterName, 'Lifetime: 30s, 15m, 1h, 1d (at most 366d)')
            [CompletionResult]::new('--kid', '--kid', [CompletionResultType]::ParameterName, 'Key id (kid) for a broker with token_jwks_file')
            [CompletionResult]::new('--username-claim', '--username-claim', [CompletionResultType]::ParameterName, 'The claim that carries --sub (the broker''s token_username_claim)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;serve' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Configuration file (mosquitto.conf syntax)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (mosquitto.conf syntax)')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Validate the configuration and exit: 0 valid, 2 invalid')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
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
        'mqsec;audit' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format. JSON and SARIF never show a progress bar')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Exit 1 when any finding is at or above this severity')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Seconds allowed for each connect and each read of every probe')
            [CompletionResult]::new('--warn-days', '--warn-days', [CompletionResultType]::ParameterName, 'Report a certificate that expires within this many days')
            [CompletionResult]::new('--cafile', '--cafile', [CompletionResultType]::ParameterName, 'Trust these CA certificates (PEM) instead of the system roots')
            [CompletionResult]::new('--also', '--also', [CompletionResultType]::ParameterName, 'Also try this port of the same host (plaintext MQTT beside TLS); repeatable')
            [CompletionResult]::new('--ws', '--ws', [CompletionResultType]::ParameterName, 'Audit MQTT over WebSocket at this path (wss:// when the port speaks TLS)')
            [CompletionResult]::new('--username', '--username', [CompletionResultType]::ParameterName, 'Audit what this identity can do; password from MQSEC_PASSWORD or --password-stdin')
            [CompletionResult]::new('--wordlist', '--wordlist', [CompletionResultType]::ParameterName, 'Try `user:password` lines from FILE (rate-limited; stops at the first success)')
            [CompletionResult]::new('--wordlist-delay-ms', '--wordlist-delay-ms', [CompletionResultType]::ParameterName, 'Milliseconds between two wordlist attempts')
            [CompletionResult]::new('--password-stdin', '--password-stdin', [CompletionResultType]::ParameterName, 'Read the password for --username from one line of standard input')
            [CompletionResult]::new('--active', '--active', [CompletionResultType]::ParameterName, 'Allow probes that publish (with --username or anonymous access)')
            [CompletionResult]::new('--show-payloads', '--show-payloads', [CompletionResultType]::ParameterName, 'Show retained message payloads (off: only topic names are reported)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;auth-server' {
            [CompletionResult]::new('--password-file', '--password-file', [CompletionResultType]::ParameterName, 'Password file (mosquitto_passwd / mqsec passwd format)')
            [CompletionResult]::new('--acl-file', '--acl-file', [CompletionResultType]::ParameterName, 'ACL file (Mosquitto acl_file format, mqsec extensions allowed)')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address and port to listen on (port 0: any free port, printed at start)')
            [CompletionResult]::new('--certfile', '--certfile', [CompletionResultType]::ParameterName, 'TLS certificate chain (PEM), e.g. from `mqsec gen-server-cert`')
            [CompletionResult]::new('--keyfile', '--keyfile', [CompletionResultType]::ParameterName, 'TLS private key (PEM)')
            [CompletionResult]::new('--rate-limit', '--rate-limit', [CompletionResultType]::ParameterName, 'Requests per second from one source address (a broker node), bursts up to the same number; 0: no limit. Over it, the engine is told "deny"')
            [CompletionResult]::new('--security-log', '--security-log', [CompletionResultType]::ParameterName, 'Security events as JSON lines: `stderr` or a file')
            [CompletionResult]::new('--rabbitmq-exchange', '--rabbitmq-exchange', [CompletionResultType]::ParameterName, 'RabbitMQ: the exchange the MQTT plugin publishes through (its mqtt.exchange)')
            [CompletionResult]::new('--auth-workers', '--auth-workers', [CompletionResultType]::ParameterName, 'Threads that verify passwords (0: one per core)')
            [CompletionResult]::new('--token-conf', '--token-conf', [CompletionResultType]::ParameterName, 'Accept access tokens too: a file of `serve`''s `token_*` lines (token_key_file or token_jwks_file, token_algorithms, token_audience, ...). Re-read on SIGHUP')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Validate the files (and TLS material) and exit: 0 valid, 2 invalid')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'mqsec;help' {
            [CompletionResult]::new('passwd', 'passwd', [CompletionResultType]::ParameterValue, 'Manage password files: add, delete, list, verify, check, import')
            [CompletionResult]::new('acl-check', 'acl-check', [CompletionResultType]::ParameterValue, 'Check topics against an ACL file, or lint it')
            [CompletionResult]::new('gen-ca', 'gen-ca', [CompletionResultType]::ParameterValue, 'Create a root or intermediate certificate authority')
            [CompletionResult]::new('gen-server-cert', 'gen-server-cert', [CompletionResultType]::ParameterValue, 'Issue a TLS server certificate (for a broker) signed by a CA')
            [CompletionResult]::new('gen-client-cert', 'gen-client-cert', [CompletionResultType]::ParameterValue, 'Issue a TLS client certificate (for a device) signed by a CA')
            [CompletionResult]::new('gen-crl', 'gen-crl', [CompletionResultType]::ParameterValue, 'Revoke certificates and write the CA''s CRL (Mosquitto''s crlfile)')
            [CompletionResult]::new('gen-token', 'gen-token', [CompletionResultType]::ParameterValue, 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)')
            [CompletionResult]::new('keygen', 'keygen', [CompletionResultType]::ParameterValue, 'Create a payload key file, or add a key to one (rotation)')
            [CompletionResult]::new('encrypt-payload', 'encrypt-payload', [CompletionResultType]::ParameterValue, 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic')
            [CompletionResult]::new('decrypt-payload', 'decrypt-payload', [CompletionResultType]::ParameterValue, 'Decrypt and authenticate an envelope; nothing is written unless it verifies')
            [CompletionResult]::new('sign-payload', 'sign-payload', [CompletionResultType]::ParameterValue, 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)')
            [CompletionResult]::new('verify-payload', 'verify-payload', [CompletionResultType]::ParameterValue, 'Verify a signed envelope and write its payload; nothing is written unless it verifies')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)')
            [CompletionResult]::new('auth-server', 'auth-server', [CompletionResultType]::ParameterValue, 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec''s files')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'mqsec;help;passwd' {
            [CompletionResult]::new('add', 'add', [CompletionResultType]::ParameterValue, 'Add a user, or replace their password. Creates FILE (mode 0600) if missing')
            [CompletionResult]::new('delete', 'delete', [CompletionResultType]::ParameterValue, 'Remove a user. Exit 1 (file unchanged) when the user is not in the file')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'List users with their hash scheme and a warning for weak or legacy hashes')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a user''s password. Exit 0 on a match, 1 on a mismatch or an unknown user')
            [CompletionResult]::new('check', 'check', [CompletionResultType]::ParameterValue, 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on')
            [CompletionResult]::new('import', 'import', [CompletionResultType]::ParameterValue, 'Hash a clear-text `USER:PASSWORD` file into a new password file')
            break
        }
        'mqsec;help;passwd;add' {
            break
        }
        'mqsec;help;passwd;delete' {
            break
        }
        'mqsec;help;passwd;list' {
            break
        }
        'mqsec;help;passwd;verify' {
            break
        }
        'mqsec;help;passwd;check' {
            break
        }
        'mqsec;help;passwd;import' {
            break
        }
        'mqsec;help;acl-check' {
            break
        }
        'mqsec;help;gen-ca' {
            break
        }
        'mqsec;help;gen-server-cert' {
            break
        }
        'mqsec;help;gen-client-cert' {
            break
        }
        'mqsec;help;gen-crl' {
            break
        }
        'mqsec;help;gen-token' {
            break
        }
        'mqsec;help;serve' {
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
        'mqsec;help;audit' {
            break
        }
        'mqsec;help;auth-server' {
            break
        }
        'mqsec;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
