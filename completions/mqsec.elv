
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
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;version'= {
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'mqsec;help'= {
            cand version 'Print the version and build details'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'mqsec;help;version'= {
        }
        &'mqsec;help;help'= {
        }
    ]
    $completions[$command]
}
