use proptest::prelude::*;

use super::*;

/// The example from docs/formats.md, trap included.
const GUIDE: &str = "\
# Admin can access everything
user admin
topic readwrite #

# Sensor devices can only publish to their topics
user sensor_001
topic write sensors/001/#
topic read commands/001

# Dashboard can read everything, write nothing
user dashboard
topic read sensors/#
topic read devices/#

# Default: deny everything
topic deny #
";

fn acl(text: &str) -> Acl {
    Acl::parse(text, "t.acl").unwrap()
}

fn user(u: &str) -> Identity {
    Identity::with_username(format!("{u}-client"), u)
}

fn ask(a: &Acl, id: &Identity, access: Access, topic: &str) -> (bool, Option<u32>) {
    let d = a.decide(id, &AclRequest::new(access, topic));
    (d.allowed, d.rule.map(Rule::line))
}

fn allowed(a: &Acl, id: &Identity, access: Access, topic: &str) -> bool {
    ask(a, id, access, topic).0
}

#[test]
fn guide_example_decisions() {
    let a = acl(GUIDE);
    let admin = user("admin");
    assert_eq!(
        ask(&a, &admin, Access::Write, "anything/at/all"),
        (true, Some(3))
    );
    assert_eq!(
        ask(&a, &admin, Access::Read, "sensors/001/t"),
        (true, Some(3))
    );
    // `#` does not reach $SYS, and nobody writes $SYS.
    assert!(!allowed(&a, &admin, Access::Read, "$SYS/broker/uptime"));
    assert!(!allowed(&a, &admin, Access::Write, "$SYS/x"));

    let s = user("sensor_001");
    assert_eq!(
        ask(&a, &s, Access::Write, "sensors/001/temp"),
        (true, Some(7))
    );
    assert_eq!(ask(&a, &s, Access::Write, "sensors/001"), (true, Some(7)));
    assert_eq!(ask(&a, &s, Access::Read, "sensors/001/temp"), (false, None));
    assert_eq!(
        ask(&a, &s, Access::Write, "sensors/002/temp"),
        (false, None)
    );
    assert_eq!(ask(&a, &s, Access::Read, "commands/001"), (true, Some(8)));
    assert_eq!(ask(&a, &s, Access::Write, "commands/001"), (false, None));

    // The trap: the trailing deny belongs to dashboard and is tried first.
    let d = user("dashboard");
    assert_eq!(
        ask(&a, &d, Access::Read, "sensors/001/temp"),
        (false, Some(16))
    );
    assert_eq!(ask(&a, &d, Access::Read, "devices/x"), (false, Some(16)));
    assert_eq!(ask(&a, &d, Access::Write, "sensors/1"), (false, Some(16)));

    // Unknown users and anonymous clients: default deny.
    assert_eq!(
        ask(&a, &user("mallory"), Access::Read, "sensors/1"),
        (false, None)
    );
    let anon = Identity::anonymous("c");
    assert_eq!(ask(&a, &anon, Access::Read, "sensors/1"), (false, None));
    let dec = a.decide(&anon, &AclRequest::new(Access::Read, "x"));
    assert_eq!(dec.to_string(), "default deny");
    let dec = a.decide(&admin, &AclRequest::new(Access::Read, "x"));
    assert_eq!(dec.to_string(), "t.acl:3");
}

#[test]
fn deny_first_within_own_list_regardless_of_order() {
    let a = acl("user u\ntopic readwrite a/#\ntopic deny a/secret\n");
    assert_eq!(
        ask(&a, &user("u"), Access::Read, "a/secret"),
        (false, Some(3))
    );
    assert_eq!(ask(&a, &user("u"), Access::Read, "a/open"), (true, Some(2)));
}

#[test]
fn non_matching_access_does_not_stop_the_search() {
    let a = acl("user u\ntopic read a/#\ntopic write a/b\n");
    assert_eq!(ask(&a, &user("u"), Access::Write, "a/b"), (true, Some(3)));
    assert_eq!(ask(&a, &user("u"), Access::Write, "a/c"), (false, None));
}

#[test]
fn user_deny_beats_pattern_allow_but_pattern_deny_does_not_beat_user_allow() {
    let a = acl("pattern deny private/#\npattern readwrite %u/#\nuser u\ntopic read private/u\ntopic deny u/locked\n");
    let u = user("u");
    assert_eq!(ask(&a, &u, Access::Read, "private/u"), (true, Some(4)));
    assert_eq!(ask(&a, &u, Access::Read, "private/v"), (false, Some(1)));
    assert_eq!(ask(&a, &u, Access::Write, "u/locked"), (false, Some(5)));
    assert_eq!(ask(&a, &u, Access::Write, "u/x"), (true, Some(2)));
    // Pattern deny first among patterns, whatever the order in the file.
    let b = acl("pattern readwrite %u/#\npattern deny %u/admin\n");
    assert_eq!(ask(&b, &u, Access::Write, "u/admin"), (false, Some(2)));
}

#[test]
fn anonymous_list_is_only_for_clients_without_username() {
    let a = acl("topic read public/#\nuser u\ntopic read u/#\n");
    let anon = Identity::anonymous("c1");
    assert_eq!(ask(&a, &anon, Access::Read, "public/x"), (true, Some(1)));
    assert!(!allowed(&a, &user("u"), Access::Read, "public/x"));
    assert!(!allowed(&a, &user("other"), Access::Read, "public/x"));
    assert!(!allowed(&a, &anon, Access::Read, "u/x"));
}

#[test]
fn patterns_substitute_and_skip() {
    let a = acl("pattern write devices/%c/out\npattern read users/%u/#\n");
    let u = Identity::with_username("dev1", "alice");
    assert!(allowed(&a, &u, Access::Write, "devices/dev1/out"));
    assert!(!allowed(&a, &u, Access::Write, "devices/dev2/out"));
    assert!(allowed(&a, &u, Access::Read, "users/alice/inbox"));
    assert!(!allowed(&a, &u, Access::Read, "users/bob/inbox"));
    // %u pattern skipped for anonymous clients; %c still applies.
    let anon = Identity::anonymous("dev9");
    assert!(!allowed(&a, &anon, Access::Read, "users/%u/x"));
    assert!(allowed(&a, &anon, Access::Write, "devices/dev9/out"));
    // An empty client id never matches a placeholder.
    let empty = Identity::with_username("", "alice");
    assert!(!allowed(&a, &empty, Access::Write, "devices//out"));
}

#[test]
fn patterns_apply_to_everyone_wherever_they_stand() {
    let a = acl("user u\ntopic read u/#\npattern read common/%c\nuser v\ntopic read v/#\n");
    let v = Identity::with_username("cv", "v");
    assert_eq!(ask(&a, &v, Access::Read, "common/cv"), (true, Some(3)));
    let anon = Identity::anonymous("ca");
    assert_eq!(ask(&a, &anon, Access::Read, "common/ca"), (true, Some(3)));
    assert!(!allowed(&a, &anon, Access::Read, "common/cv"));
}

#[test]
fn a_topic_with_spaces_needs_the_access_word() {
    let e = Acl::parse("topic my topic\n", "s.acl").unwrap_err();
    assert!(
        e.to_string().starts_with("s.acl:1: invalid access \"my\""),
        "{e}"
    );
    let a = acl("user u\ntopic read my topic/x\n");
    assert!(allowed(&a, &user("u"), Access::Read, "my topic/x"));
}

#[test]
fn empty_values_never_grant_but_still_deny() {
    let a = acl("pattern deny users/%u/private\npattern read users/%u/#\npattern read users/#\n");
    let empty = Identity::with_username("c", "");
    // Mosquitto substitutes "" into the deny pattern; so does mqsec, so the deny holds...
    assert_eq!(
        ask(&a, &empty, Access::Read, "users//private"),
        (false, Some(1))
    );
    // ...while an allow pattern never matches an empty value.
    assert_eq!(ask(&a, &empty, Access::Read, "users//x"), (true, Some(3)));
    let b = acl("pattern read users/%u/#\n");
    assert!(!allowed(&b, &empty, Access::Read, "users//x"));
    assert!(!allowed(&b, &empty, Access::Subscribe, "users//#"));
    let sub = a.decide(
        &empty,
        &AclRequest::new(Access::Subscribe, "users//private"),
    );
    assert_eq!((sub.allowed, sub.rule.map(Rule::line)), (false, Some(1)));
}

#[test]
fn wildcard_identities_are_denied_when_patterns_exist() {
    let a = acl("pattern read public/#\nuser a+b\ntopic read own/#\n");
    let bad = Identity::with_username("c", "a+b");
    // The own list is still tried first (Mosquitto order)...
    assert!(allowed(&a, &bad, Access::Read, "own/x"));
    // ...but nothing from patterns.
    let d = a.decide(&bad, &AclRequest::new(Access::Read, "public/x"));
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::DangerousIdentity);
    let bad_cid = Identity::with_username("dev#", "ok");
    assert!(!allowed(&a, &bad_cid, Access::Read, "public/x"));
    // Without patterns, the gate does not apply.
    let b = acl("user a+b\ntopic read x\n");
    assert!(allowed(&b, &bad, Access::Read, "x"));
}

#[test]
fn slash_in_identity_cannot_widen_a_pattern() {
    let a = acl("pattern readwrite sensors/%u/#\npattern read public/#\n");
    let evil = Identity::with_username("c", "a/b");
    // Mosquitto 2.0.11 would let "a/b" into user "a"'s tree; mqsec denies.
    let d = a.decide(&evil, &AclRequest::new(Access::Write, "sensors/a/b/x"));
    assert!(!d.allowed);
    assert_eq!(d.reason, Reason::DangerousIdentity);
    assert!(!allowed(&a, &evil, Access::Read, "public/x"));
    // A '/' in the client id is harmless when no pattern uses %c.
    let ok = Identity::with_username("home/dev1", "alice");
    assert!(allowed(&a, &ok, Access::Read, "public/x"));
    assert!(allowed(&a, &ok, Access::Write, "sensors/alice/t"));
}

#[test]
fn dollar_topics() {
    let a = acl("user u\ntopic read #\ntopic read +/broker/#\ntopic readwrite $SYS/broker/#\ntopic readwrite $app/#\n");
    let u = user("u");
    assert_eq!(
        ask(&a, &u, Access::Read, "$SYS/broker/uptime"),
        (true, Some(4))
    );
    assert!(!allowed(&a, &u, Access::Read, "$SYS/other"));
    let d = a.decide(&u, &AclRequest::new(Access::Write, "$SYS/broker/uptime"));
    assert_eq!((d.allowed, d.reason), (false, Reason::SysWrite));
    assert!(allowed(&a, &u, Access::Write, "$app/x"));
    let d = a.decide(&u, &AclRequest::new(Access::Write, "$share/g/x"));
    assert_eq!((d.allowed, d.reason), (false, Reason::ShareTopic));
    // Subscriptions: '#' never grants $SYS.
    let b = acl("user u\ntopic read #\n");
    assert!(!allowed(&b, &u, Access::Subscribe, "$SYS/#"));
    assert!(allowed(&b, &u, Access::Subscribe, "#"));
    assert!(allowed(&a, &u, Access::Subscribe, "$SYS/broker/+"));
}

#[test]
fn topic_rules_do_not_substitute() {
    let a = acl("user u\ntopic read %u/x\n");
    assert!(!allowed(&a, &user("u"), Access::Read, "u/x"));
    assert!(allowed(&a, &user("u"), Access::Read, "%u/x"));
}

#[test]
fn repeated_user_blocks_merge() {
    let a = acl("user u\ntopic read a\nuser v\ntopic read b\nuser u\ntopic read c\n");
    assert!(allowed(&a, &user("u"), Access::Read, "a"));
    assert!(allowed(&a, &user("u"), Access::Read, "c"));
    assert!(!allowed(&a, &user("u"), Access::Read, "b"));
}

#[test]
fn topic_word_quirk_grants_readwrite_on_topic_read() {
    let a = acl("user u\ntopic read\n");
    assert!(allowed(&a, &user("u"), Access::Write, "read"));
    assert!(!allowed(&a, &user("u"), Access::Read, "other"));
}

#[test]
fn limits_on_rules() {
    let a = acl("user u\ntopic write[max_qos=1,retain=false] s/#\ntopic read[max_qos=0,retain=false] c/#\ntopic readwrite x\n");
    let u = user("u");
    let w = |qos, retain| {
        a.decide(
            &u,
            &AclRequest {
                access: Access::Write,
                topic: "s/1",
                qos,
                retain,
            },
        )
    };
    assert!(w(0, false).allowed);
    assert!(w(1, false).allowed);
    assert_eq!(w(2, false).reason, Reason::QosAboveLimit);
    assert_eq!(w(2, false).rule.map(Rule::line), Some(2));
    assert_eq!(w(1, true).reason, Reason::RetainNotAllowed);
    let r = a.decide(
        &u,
        &AclRequest {
            access: Access::Read,
            topic: "c/1",
            qos: 2,
            retain: false,
        },
    );
    assert!(r.allowed);
    assert_eq!(r.max_qos, 0);
    let r = a.decide(
        &u,
        &AclRequest {
            access: Access::Read,
            topic: "c/1",
            qos: 1,
            retain: true,
        },
    );
    assert_eq!((r.allowed, r.reason), (false, Reason::RetainNotAllowed));
    let s = a.decide(&u, &AclRequest::new(Access::Subscribe, "c/#"));
    assert!(s.allowed);
    assert_eq!(s.max_qos, 0);
    let x = a.decide(
        &u,
        &AclRequest {
            access: Access::Write,
            topic: "x",
            qos: 2,
            retain: true,
        },
    );
    assert!(x.allowed && x.max_qos == 2);
}

#[test]
fn roles_apply_as_part_of_the_users_list() {
    let text = "\
role viewer
topic read sensors/#
topic deny sensors/secret

role operator
topic write commands/#

user alice
roles viewer,operator
topic readwrite alice/#
topic read sensors/secret

user bob
topic read bob/#
";
    let a = acl(text);
    let alice = user("alice");
    assert_eq!(ask(&a, &alice, Access::Read, "sensors/1"), (true, Some(2)));
    assert_eq!(
        ask(&a, &alice, Access::Write, "commands/x"),
        (true, Some(6))
    );
    // A role's deny is a deny of the user's list: tried before the user's own allows.
    assert_eq!(
        ask(&a, &alice, Access::Read, "sensors/secret"),
        (false, Some(3))
    );
    assert_eq!(a.roles_of(Some("alice")), ["viewer", "operator"]);
    // Roles from the identity (tokens) apply after the file's.
    let mut bob = user("bob");
    assert!(!allowed(&a, &bob, Access::Write, "commands/x"));
    bob.set_roles(vec!["operator".into(), "nonexistent".into()]);
    assert_eq!(ask(&a, &bob, Access::Write, "commands/x"), (true, Some(6)));
    assert!(allowed(&a, &bob, Access::Read, "bob/1"));
    // Roles for anonymous clients, assigned before the first user line.
    let b = acl("role pub\ntopic read public/#\nuser x\ntopic read x\n");
    assert!(!allowed(
        &b,
        &Identity::anonymous("c"),
        Access::Read,
        "public/a"
    ));
    let c = acl("roles pub\nrole pub\ntopic read public/#\n");
    assert!(allowed(
        &c,
        &Identity::anonymous("c"),
        Access::Read,
        "public/a"
    ));
}

#[test]
fn role_errors_name_the_line() {
    let e = Acl::parse("user a\nroles nope\n", "f.acl").unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.acl:2: unknown role \"nope\": define it with a `role nope` block"
    );
    let e = Acl::parse("role a\nroles b\nrole b\n", "f.acl").unwrap_err();
    assert!(e.to_string().starts_with("f.acl:2: `roles` inside role"));
}

#[test]
fn subscribe_checks() {
    let a = acl("user u\ntopic read sensors/#\ntopic deny sensors/secret/#\ntopic write cmd/#\ntopic read a/+/c\n");
    let u = user("u");
    let sub = |f| a.decide(&u, &AclRequest::new(Access::Subscribe, f));
    assert_eq!(sub("sensors/#").rule.map(Rule::line), Some(2));
    assert!(sub("sensors/#").allowed);
    assert!(sub("sensors/+/t").allowed);
    // Wider than what is granted, but intersects: allowed (deliveries filtered one by one).
    assert!(sub("#").allowed);
    assert!(sub("+/x").allowed);
    // Entirely inside a deny.
    let d = sub("sensors/secret/#");
    assert_eq!((d.allowed, d.rule.map(Rule::line)), (false, Some(3)));
    // Write-only grants do not make a filter readable.
    assert!(!sub("cmd/#").allowed);
    assert!(!sub("other/#").allowed);
    assert!(sub("a/b/c").allowed);
    assert!(!sub("a/b/d").allowed);
    // Shared subscriptions are judged by their filter.
    assert!(sub("$share/g/sensors/1").allowed);
    assert!(!sub("$share/g/other").allowed);
    // A filter whose every shared topic is denied reports the deny.
    let b = acl("user u\ntopic read s/+\ntopic deny s/x\n");
    let d = b.decide(&u, &AclRequest::new(Access::Subscribe, "+/x"));
    assert_eq!(
        (d.allowed, d.reason, d.rule.map(Rule::line)),
        (false, Reason::FilterDenied, Some(3))
    );
    // Patterns take part, substituted.
    let p = acl("pattern read users/%u/#\npattern deny users/%u/private/#\n");
    let alice = user("alice");
    let ps = |f| {
        p.decide(&alice, &AclRequest::new(Access::Subscribe, f))
            .allowed
    };
    assert!(ps("users/alice/#"));
    assert!(ps("users/+/inbox"));
    assert!(!ps("users/bob/#"));
    assert!(!ps("users/alice/private/x"));
}

#[test]
fn read_and_subscribe_agree_on_concrete_topics() {
    // For a topic name used as a filter, SUBSCRIBE and read must give the same answer.
    let a = acl(GUIDE);
    for u in ["admin", "sensor_001", "dashboard", "x"] {
        for t in ["sensors/001/t", "commands/001", "devices/a", "$SYS/x", "a"] {
            let id = user(u);
            assert_eq!(
                allowed(&a, &id, Access::Read, t),
                allowed(&a, &id, Access::Subscribe, t),
                "{u} {t}"
            );
        }
    }
}

#[test]
fn syntax_errors_name_file_and_line() {
    let e = Acl::parse("user a\ntopic read ok\ntopic bogus x\n", "f.acl").unwrap_err();
    assert_eq!(
        e.to_string(),
        "f.acl:3: invalid access \"bogus\": expected read, write, readwrite or deny"
    );
}

#[test]
fn lint_flags_the_guide_trap_and_more() {
    let f = lint(GUIDE, "g.acl");
    let trap = f.iter().find(|x| x.code == "deny-kills-block").unwrap();
    assert_eq!((trap.line, trap.severity), (16, Severity::Error));
    assert!(trap.message.contains("dashboard"), "{}", trap.message);
    let text = "\
topic read #
pattern write status/+
pattern write %c/out
pattern readwrite #
user u
topic read a/#
topic read a/b
topic read
user empty
user v
topic write %u/x
topic bad x
";
    let f = lint(text, "l.acl");
    let codes: Vec<(u32, &str, Severity)> =
        f.iter().map(|x| (x.line, x.code, x.severity)).collect();
    assert!(
        codes.contains(&(1, "wildcard-grant", Severity::Error)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(2, "unscoped-write-pattern", Severity::Error)),
        "{codes:?}"
    );
    assert!(!codes.iter().any(|c| c.0 == 3), "{codes:?}");
    assert!(
        codes.contains(&(4, "wildcard-grant", Severity::Error)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(7, "shadowed", Severity::Warning)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(8, "access-word-as-topic", Severity::Error)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(9, "no-rules", Severity::Warning)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(11, "placeholder-in-topic", Severity::Warning)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(12, "syntax", Severity::Error)),
        "{codes:?}"
    );
    let f = lint(
        "pattern deny shared/locked\npattern read shared/#\nuser a\ntopic read shared/+\n",
        "o.acl",
    );
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!((f[0].line, f[0].code), (1, "pattern-deny-overridden"));
    assert!(
        f[0].message.contains("user \"a\" (line 4)"),
        "{}",
        f[0].message
    );
    // A clean file lints clean.
    assert!(lint(
        "user a\ntopic read a/#\npattern write devices/%c/#\n",
        "c.acl"
    )
    .is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "(?s).{0,400}") {
        let _ = Acl::parse(&text, "p.acl");
        let _ = lint(&text, "p.acl");
    }

    #[test]
    fn parsing_acl_like_lines_never_panics(lines in proptest::collection::vec(
        "(topic|pattern|user|role|roles|#| ) ?(read|write|readwrite|deny|write\\[max_qos=1\\]|[a-z]{1,3})? ?[a-z%cu+#/$ ]{0,12}", 0..12)) {
        let text = lines.join("\n");
        if let Ok(a) = Acl::parse(&text, "p.acl") {
            let id = Identity::with_username("c", "u");
            for t in ["a", "a/b", "$SYS/x", "u/c"] {
                let _ = a.decide(&id, &AclRequest::new(Access::Read, t));
                let _ = a.decide(&id, &AclRequest::new(Access::Subscribe, t));
            }
            let _ = a.decide(&id, &AclRequest::new(Access::Subscribe, "#"));
        }
        let _ = lint(&text, "p.acl");
    }

    #[test]
    fn wildcard_or_slash_identities_never_gain_through_patterns(
        user in "[a-c+#/]{1,4}",
        client in "[a-c+#/]{1,4}",
        topic in "[a-c+#/]{1,3}(/[a-c]{1,2}){0,3}",
        access in prop_oneof![Just(Access::Read), Just(Access::Write)],
    ) {
        let a = acl("pattern readwrite users/%u/#\npattern readwrite devices/%c/#\npattern read %u/%c\n");
        let id = Identity::with_username(client.clone(), user.clone());
        if validate_name(&format!("users/{topic}")).is_ok() {
            for t in [format!("users/{topic}"), format!("devices/{topic}"), topic.clone()] {
                let d = a.decide(&id, &AclRequest::new(access, &t));
                if d.allowed {
                    prop_assert!(!user.contains(['+', '#', '/']), "user {user:?} got {t}");
                    prop_assert!(!client.contains(['+', '#', '/']), "client {client:?} got {t}");
                    // And then only its own tree.
                    let own = t == format!("{user}/{client}")
                        || t == format!("users/{user}")
                        || t.starts_with(&format!("users/{user}/"))
                        || t == format!("devices/{client}")
                        || t.starts_with(&format!("devices/{client}/"));
                    prop_assert!(own, "{:?}/{:?} got {}", user, client, t);
                }
            }
        }
    }
}

#[test]
fn subscribe_all_needs_every_topic_of_the_filter_readable() {
    let a = acl("user u\n\
                 topic deny sensors/secret/#\n\
                 topic read sensors/#\n\
                 topic read[max_qos=1] status/+\n\
                 topic read status/#\n\
                 topic read[retain=false] live/#\n\
                 topic read pub/a\n\
                 topic read pub/b\n\
                 pattern read own/%u/#\n\
                 pattern deny own/u/locked\n");
    let u = user("u");
    let all = |t: &str| a.decide(&u, &AclRequest::new(Access::SubscribeAll, t));
    // Plain `subscribe` lets the overlap through (each delivery is checked later)...
    assert!(allowed(&a, &u, Access::Subscribe, "sensors/#"));
    // ... subscribe-all does not: the deny shares topics with the filter.
    assert_eq!(all("sensors/#").reason, Reason::DenyRule);
    assert_eq!(all("sensors/#").rule.map(Rule::line), Some(2));
    // sensors/secret/temp is denied
    assert!(!all("sensors/+/temp").allowed);
    // Two rules that together cover a filter are not enough (conservative).
    assert!(!all("pub/+").allowed);
    assert!(all("pub/a").allowed);
    // The lowest max_qos of the rules deciding its topics.
    let d = all("status/#");
    assert!(d.allowed);
    assert_eq!(d.max_qos, 1);
    assert_eq!(all("status/x/y").max_qos, 2);
    // retain=false: denied when retained messages may be delivered.
    assert!(all("live/#").allowed);
    let retained = AclRequest {
        retain: true,
        ..AclRequest::new(Access::SubscribeAll, "live/#")
    };
    assert_eq!(a.decide(&u, &retained).reason, Reason::RetainNotAllowed);
    // Patterns: a pattern deny sharing a topic refuses; $share/G/F is judged by F.
    assert!(!all("own/u/#").allowed);
    assert!(all("own/u/data/#").allowed);
    assert!(all("$share/g/own/u/data/#").allowed);
    assert!(!all("own/v/data/#").allowed);
    // `#` never reaches $SYS.
    let root = acl("user r\ntopic read #\n");
    assert!(
        !root
            .decide(&user("r"), &AclRequest::new(Access::SubscribeAll, "$SYS/#"))
            .allowed
    );
    assert!(
        root.decide(&user("r"), &AclRequest::new(Access::SubscribeAll, "#"))
            .allowed
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, .. ProptestConfig::default() })]

    /// Whatever subscribe-all allows, every topic the filter matches may be read (checked on
    /// every topic of up to three levels over a small alphabet).
    #[test]
    fn subscribe_all_never_grants_an_unreadable_topic(
        rules in proptest::collection::vec(
            (prop_oneof![Just("topic"), Just("pattern")],
             prop_oneof![Just("read "), Just("deny "), Just("write "), Just("readwrite ")],
             proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("+"), Just("%u")], 1..3),
             any::<bool>()),
            0..8),
        filter in proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("+")], 1..3),
        hash in any::<bool>(),
    ) {
        let mut text = String::from("user u\n");
        for (kind, access, levels, h) in &rules {
            let mut t = levels.join("/");
            if *h { t.push_str("/#"); }
            text.push_str(&format!("{kind} {access}{t}\n"));
        }
        let Ok(a) = Acl::parse(&text, "p.acl") else { return Ok(()); };
        let mut f = filter.join("/");
        if hash { f.push_str("/#"); }
        let id = Identity::with_username("c", "u");
        let d = a.decide(&id, &AclRequest::new(Access::SubscribeAll, &f));
        if d.allowed {
            let words = ["a", "b", "u", "c"];
            let mut topics: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            for _ in 0..2 {
                let more: Vec<String> = topics.iter()
                    .flat_map(|t| words.iter().map(move |w| format!("{t}/{w}")))
                    .collect();
                topics.extend(more);
            }
            let fl = levels_of(&f);
            for t in topics.iter().filter(|t| covers(&fl, &levels_of(t))) {
                prop_assert!(allowed(&a, &id, Access::Read, t), "{text}\nfilter {f} allowed but {t} is not readable");
            }
        }
    }
}
