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
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "passwd" -d 'Manage password files: add, delete, list, verify, check, import'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "acl-check" -d 'Check topics against an ACL file, or lint it'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "gen-ca" -d 'Create a root or intermediate certificate authority'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "gen-server-cert" -d 'Issue a TLS server certificate (for a broker) signed by a CA'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "gen-client-cert" -d 'Issue a TLS client certificate (for a device) signed by a CA'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "gen-crl" -d 'Revoke certificates and write the CA\'s CRL (Mosquitto\'s crlfile)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "gen-token" -d 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "serve" -d 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "keygen" -d 'Create a payload key file, or add a key to one (rotation)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "encrypt-payload" -d 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "decrypt-payload" -d 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "sign-payload" -d 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "verify-payload" -d 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "audit" -d 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "auth-server" -d 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec\'s files'
complete -c mqsec -n "__fish_mqsec_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "add" -d 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "delete" -d 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "list" -d 'List users with their hash scheme and a warning for weak or legacy hashes'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "verify" -d 'Check a user\'s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "check" -d 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "import" -d 'Hash a clear-text `USER:PASSWORD` file into a new password file'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and not __fish_seen_subcommand_from add delete list verify check import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -l memory-kib -d 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -l iterations -d 'argon2id iterations (time cost)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -l parallelism -d 'argon2id parallelism (lanes)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -l allow-weak-params -d 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from add" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from list" -l json -d 'One JSON array of {line, user, scheme, params, warning}'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -l memory-kib -d 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -l iterations -d 'argon2id iterations (time cost)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -l parallelism -d 'argon2id parallelism (lanes)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -l upgrade -d 'On a match, rewrite a legacy or weaker hash as argon2id (the file is locked and updated)'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -l allow-weak-params -d 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from verify" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from check" -l fail-on -d 'Lowest severity that makes the exit code 1' -r -f -a "warning\t''
error\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from check" -l json -d 'One JSON object {file, users, findings: [{line, severity, message}]}'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -l memory-kib -d 'argon2id memory cost in KiB (OWASP minimum: 19456 with 2 iterations)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -l iterations -d 'argon2id iterations (time cost)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -l parallelism -d 'argon2id parallelism (lanes)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -l force -d 'Replace OUT if it exists'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -l allow-weak-params -d 'Accept parameters below the OWASP minimum. For tests only: such hashes are cheap to crack'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from import" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "add" -d 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "list" -d 'List users with their hash scheme and a warning for weak or legacy hashes'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check a user\'s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "check" -d 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "import" -d 'Hash a clear-text `USER:PASSWORD` file into a new password file'
complete -c mqsec -n "__fish_mqsec_using_subcommand passwd; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s u -l username -d 'The client\'s username; omit it for an anonymous client' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l token -d 'Answer for the client a token (JWT) names, with its acl and roles claims. The signature and times are not checked: the answer is what the token may do if the broker accepts it. Use /dev/null as ACL_FILE for a listener without acl_file' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l username-claim -d 'With --token: the claim that names the client (the broker\'s token_username_claim)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s i -l client-id -d 'The client id (%c in patterns); empty by default, and then %c patterns never match' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s a -l access -d 'What the client wants to do' -r -f -a "read\t''
write\t''
subscribe\t''
subscribe-all\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l qos -d 'QoS of the publish or delivery (checked against max_qos=)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l role -d 'Extra role for the client, as a token would grant it (repeatable)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l queries -d 'JSON lines of queries: {"username", "client_id", "access", "topic", "qos", "retain", "roles"}' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l retain -d 'The message is retained (checked against retain=false)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l lint -d 'Lint the file instead of answering queries (exit 1 on error-level findings)'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -l json -d 'One JSON object per line instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mqsec -n "__fish_mqsec_using_subcommand acl-check" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l out -d 'Directory to write the CA into (created 0700 if missing)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l cn -d 'Common name of the CA [default: "mqsec Root CA <random>"]' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l days -d 'Validity in days' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l key-type -d 'Key type of the CA key' -r -f -a "ecdsa-p256\t''
ecdsa-p384\t''
ed25519\t''
rsa-2048\t''
rsa-3072\t''
rsa-4096\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l ca -d 'Parent CA directory (with --intermediate)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l path-len -d 'How many intermediate levels may follow below this CA [default: 1 for a root, the parent\'s minus one for an intermediate]' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l intermediate -d 'Make an intermediate CA signed by the CA in --ca'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l force -d 'Replace an existing CA in DIR (its index and CRL are reset)'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -l json -d 'Print JSON instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-ca" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l ca -d 'CA directory (made by gen-ca)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l out -d 'Directory to write NAME.crt and NAME.key into (created 0700 if missing)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l name -d 'File name and common name of the certificate' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l dns -d 'DNS name the server is reached by (repeatable)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l ip -d 'IP address the server is reached by (repeatable)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l port -d 'Port of the TLS listener in the printed broker configuration' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l days -d 'Validity in days (at most 397 without --allow-long-validity)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l key-type -d 'Key type of the new key' -r -f -a "ecdsa-p256\t''
ecdsa-p384\t''
ed25519\t''
rsa-2048\t''
rsa-3072\t''
rsa-4096\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l allow-long-validity -d 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA\'s end'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l force -d 'Replace existing NAME.crt/NAME.key'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -l json -d 'Print JSON instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-server-cert" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l ca -d 'CA directory (made by gen-ca)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l out -d 'Directory to write CN.crt and CN.key into (created 0700 if missing)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l name -d 'Common name: the device\'s identity (username with use_identity_as_username) and file name' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l broker -d 'The broker the printed client commands connect to: HOST, HOST:PORT or [IPV6]:PORT (it must be a name in the broker\'s certificate) [default: localhost:8883]' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l days -d 'Validity in days (at most 397 without --allow-long-validity)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l key-type -d 'Key type of the new key' -r -f -a "ecdsa-p256\t''
ecdsa-p384\t''
ed25519\t''
rsa-2048\t''
rsa-3072\t''
rsa-4096\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l p12 -d 'Also write CN.p12, a password-protected PKCS#12 bundle (password from prompt or stdin)'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l allow-long-validity -d 'Allow --days above 397 (devices that cannot be re-provisioned); never beyond the CA\'s end'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l force -d 'Replace existing NAME.crt/NAME.key'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -l json -d 'Print JSON instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-client-cert" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -l ca -d 'CA directory (made by gen-ca)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -l revoke -d 'Revoke the certificate in this PEM file (repeatable; it must be issued by this CA)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -l revoke-serial -d 'Revoke by serial number in hex, as printed at issuance (repeatable; colons allowed)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -l crl-days -d 'Days until the CRL\'s nextUpdate (re-run gen-crl before then)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -l json -d 'Print JSON instead of text'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-crl" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l key -d 'The signing key: a secret file (HS*) or a private key PEM (RS*, PS*, ES*, EdDSA)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l alg -d 'Signature algorithm' -r -f -a "HS256\t''
HS384\t''
HS512\t''
RS256\t''
RS384\t''
RS512\t''
PS256\t''
PS384\t''
PS512\t''
ES256\t''
ES384\t''
EdDSA\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l sub -d 'The username the token names (its sub claim, or --username-claim)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l aud -d 'Audience (aud): the broker\'s token_audience' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l iss -d 'Issuer (iss): the broker\'s token_issuer' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l acl-pub -d 'A topic filter the client may publish to (repeatable; %u and %c allowed)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l acl-sub -d 'A topic filter the client may subscribe to and receive from (repeatable)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l roles -d 'Roles of the broker\'s ACL file (comma-separated or repeated)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l ttl -d 'Lifetime: 30s, 15m, 1h, 1d (at most 366d)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l kid -d 'Key id (kid) for a broker with token_jwks_file' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -l username-claim -d 'The claim that carries --sub (the broker\'s token_username_claim)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand gen-token" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand serve" -s c -l config -d 'Configuration file (mosquitto.conf syntax)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand serve" -l check -d 'Validate the configuration and exit: 0 valid, 2 invalid'
complete -c mqsec -n "__fish_mqsec_using_subcommand serve" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand serve" -s V -l version -d 'Print version'
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
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l format -d 'Output format. JSON and SARIF never show a progress bar' -r -f -a "table\t''
json\t''
sarif\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l fail-on -d 'Exit 1 when any finding is at or above this severity' -r -f -a "info\t''
low\t''
medium\t''
high\t''
critical\t''"
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l timeout -d 'Seconds allowed for each connect and each read of every probe' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l warn-days -d 'Report a certificate that expires within this many days' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l cafile -d 'Trust these CA certificates (PEM) instead of the system roots' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l also -d 'Also try this port of the same host (plaintext MQTT beside TLS); repeatable' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l ws -d 'Audit MQTT over WebSocket at this path (wss:// when the port speaks TLS)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l username -d 'Audit what this identity can do; password from MQSEC_PASSWORD or --password-stdin' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l wordlist -d 'Try `user:password` lines from FILE (rate-limited; stops at the first success)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l wordlist-delay-ms -d 'Milliseconds between two wordlist attempts' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l password-stdin -d 'Read the password for --username from one line of standard input'
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l active -d 'Allow probes that publish (with --username or anonymous access)'
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -l show-payloads -d 'Show retained message payloads (off: only topic names are reported)'
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c mqsec -n "__fish_mqsec_using_subcommand audit" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l password-file -d 'Password file (mosquitto_passwd / mqsec passwd format)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l acl-file -d 'ACL file (Mosquitto acl_file format, mqsec extensions allowed)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l listen -d 'Address and port to listen on (port 0: any free port, printed at start)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l certfile -d 'TLS certificate chain (PEM), e.g. from `mqsec gen-server-cert`' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l keyfile -d 'TLS private key (PEM)' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l rate-limit -d 'Requests per second from one source address (a broker node), bursts up to the same number; 0: no limit. Over it, the engine is told "deny"' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l security-log -d 'Security events as JSON lines: `stderr` or a file' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l rabbitmq-exchange -d 'RabbitMQ: the exchange the MQTT plugin publishes through (its mqtt.exchange)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l auth-workers -d 'Threads that verify passwords (0: one per core)' -r
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l token-conf -d 'Accept access tokens too: a file of `serve`\'s `token_*` lines (token_key_file or token_jwks_file, token_algorithms, token_audience, ...). Re-read on SIGHUP' -r -F
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -l check -d 'Validate the files (and TLS material) and exit: 0 valid, 2 invalid'
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -s h -l help -d 'Print help'
complete -c mqsec -n "__fish_mqsec_using_subcommand auth-server" -s V -l version -d 'Print version'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "passwd" -d 'Manage password files: add, delete, list, verify, check, import'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "acl-check" -d 'Check topics against an ACL file, or lint it'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "gen-ca" -d 'Create a root or intermediate certificate authority'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "gen-server-cert" -d 'Issue a TLS server certificate (for a broker) signed by a CA'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "gen-client-cert" -d 'Issue a TLS client certificate (for a device) signed by a CA'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "gen-crl" -d 'Revoke certificates and write the CA\'s CRL (Mosquitto\'s crlfile)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "gen-token" -d 'Mint an access token (JWT) for a broker with token_key_file or token_jwks_file'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "serve" -d 'Run the MQTT broker (MQTT 3.1, 3.1.1 and 5.0)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "keygen" -d 'Create a payload key file, or add a key to one (rotation)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "encrypt-payload" -d 'Encrypt a payload into an envelope (XChaCha20-Poly1305), optionally bound to a topic'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "decrypt-payload" -d 'Decrypt and authenticate an envelope; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "sign-payload" -d 'Sign a payload with HMAC-SHA256 (integrity only: the payload stays readable)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "verify-payload" -d 'Verify a signed envelope and write its payload; nothing is written unless it verifies'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "audit" -d 'Audit a broker: TLS, certificate and MQTT access control (table, JSON or SARIF)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "auth-server" -d 'Answer RabbitMQ, EMQX and VerneMQ authentication and ACL questions from mqsec\'s files'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and not __fish_seen_subcommand_from passwd acl-check gen-ca gen-server-cert gen-client-cert gen-crl gen-token serve keygen encrypt-payload decrypt-payload sign-payload verify-payload audit auth-server help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "add" -d 'Add a user, or replace their password. Creates FILE (mode 0600) if missing'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "delete" -d 'Remove a user. Exit 1 (file unchanged) when the user is not in the file'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "list" -d 'List users with their hash scheme and a warning for weak or legacy hashes'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "verify" -d 'Check a user\'s password. Exit 0 on a match, 1 on a mismatch or an unknown user'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "check" -d 'Lint a password file. Exit 1 when it finds a problem at or above --fail-on'
complete -c mqsec -n "__fish_mqsec_using_subcommand help; and __fish_seen_subcommand_from passwd" -f -a "import" -d 'Hash a clear-text `USER:PASSWORD` file into a new password file'
