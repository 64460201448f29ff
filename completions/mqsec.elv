
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
            cand acl-check 'Check topics against an ACL file, or lint it'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;acl-check'= {
            cand -u 'The client''s username; omit it for an anonymous client'
            cand --username 'The client''s username; omit it for an anonymous client'
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
        &'mqsec;version'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;help'= {
            cand acl-check 'Check topics against an ACL file, or lint it'
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;help;acl-check'= {
        }
        &'mqsec;help;version'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
