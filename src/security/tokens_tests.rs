use super::*;
use crate::config::model::{FileOption, Located, TokenConfig, DEFAULT_TOKEN_LEEWAY};
use std::time::Duration;

impl TokenVerifier {
    fn load_test(cfg: &TokenConfig) -> Result<TokenVerifier, String> {
        TokenVerifier::load(cfg, 100)
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

fn config(dir: &Path, name: &str, body: &[u8], jwks: bool) -> TokenConfig {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    let f = FileOption {
        path,
        origin: "test.conf:1".into(),
    };
    TokenConfig {
        key: if jwks {
            TokenKeySource::Jwks(f)
        } else {
            TokenKeySource::KeyFile(f)
        },
        algorithms: None,
        audience: None,
        issuer: None,
        leeway: DEFAULT_TOKEN_LEEWAY,
        username_claim: "sub".into(),
    }
}

fn req(sub: &str) -> MintRequest {
    MintRequest {
        subject: sub.into(),
        ttl_secs: 600,
        username_claim: "sub".into(),
        ..MintRequest::default()
    }
}

/// A token with the given header and claims, signed with HS256 over `SECRET` (or not signed).
fn raw(header: &str, claims: &Value, secret: Option<&[u8]>) -> String {
    use hmac::{Hmac, Mac};
    let h = URL_SAFE_NO_PAD.encode(header);
    let c = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{h}.{c}");
    let sig = match secret {
        Some(k) => {
            let mut m = Hmac::<Sha256>::new_from_slice(k).unwrap();
            m.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{input}.{sig}")
}

#[test]
fn hs256_round_trip_scope_and_username() {
    let dir = tempfile::tempdir().unwrap();
    let v = TokenVerifier::load_test(&config(dir.path(), "k", SECRET, false)).unwrap();
    let mut r = req("dev-1");
    r.publish = vec!["devices/%u/up".into()];
    r.subscribe = vec!["devices/%u/down/#".into()];
    r.roles = vec!["viewer".into()];
    let t = mint(Algorithm::HS256, SECRET, &r).unwrap();
    assert!(looks_like_jwt(t.as_bytes()));
    assert!(!looks_like_jwt(b"hunter2"));
    assert!(!looks_like_jwt(b"a.b.c"));
    let g = v.verify(t.as_bytes(), None).unwrap();
    assert_eq!(g.username, "dev-1");
    let scope = g.scope.unwrap();
    assert_eq!(scope.roles(), ["viewer".to_string()]);
    assert_eq!(scope.rules().len(), 2);
    assert!(v.verify(t.as_bytes(), Some("dev-1")).is_ok());
    assert!(v.verify(t.as_bytes(), Some("")).is_ok());
    assert_eq!(
        v.verify(t.as_bytes(), Some("dev-2")),
        Err(TokenError::UsernameMismatch("sub".into()))
    );
    // Without acl/roles: unscoped.
    let t = mint(Algorithm::HS256, SECRET, &req("plain")).unwrap();
    assert_eq!(v.verify(t.as_bytes(), None).unwrap().scope, None);
}

#[test]
fn accepted_tokens_are_cached_but_still_expire() {
    let dir = tempfile::tempdir().unwrap();
    let v = TokenVerifier::load_test(&config(dir.path(), "k", SECRET, false)).unwrap();
    let t = mint(Algorithm::HS256, SECRET, &req("dev")).unwrap();
    let g = v.verify(t.as_bytes(), None).unwrap();
    assert_eq!(v.verify(t.as_bytes(), Some("dev")), Ok(g.clone()));
    assert_eq!(v.cache.lock().len(), 1);
    // The username is checked on every use, cached or not.
    assert!(v.verify(t.as_bytes(), Some("eve")).is_err());
    // Failures are never cached.
    assert!(v.verify(b"eyJhbGciOiJIUzI1NiJ9.e30.AAAA", None).is_err());
    assert_eq!(v.cache.lock().len(), 1);
    // A cached token past its end is refused (and forgotten).
    let k = v.cache_key_of(t.as_bytes());
    v.cache.lock().remove(&k);
    v.cache.lock().insert(
        k,
        TokenGrant {
            valid_until: 1,
            ..g
        },
    );
    assert_eq!(v.verify(t.as_bytes(), None), Err(TokenError::Expired));
    assert!(v.cache.lock().is_empty());
    // Without a cache, every use is checked in full.
    let nc = TokenVerifier::load(&config(dir.path(), "k", SECRET, false), 0).unwrap();
    assert!(nc.verify(t.as_bytes(), None).is_ok());
    assert!(nc.cache.lock().is_empty());
}

#[test]
fn every_refusal_has_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), "k", SECRET, false);
    cfg.leeway = Duration::from_secs(0);
    cfg.audience = Some("mqtt".into());
    cfg.issuer = Some("idp".into());
    let v = TokenVerifier::load_test(&cfg).unwrap();
    let now = now_unix();
    let hs = r#"{"alg":"HS256","typ":"JWT"}"#;
    let good = serde_json::json!({"sub": "a", "exp": now + 60, "aud": "mqtt", "iss": "idp"});
    assert!(v
        .verify(raw(hs, &good, Some(SECRET)).as_bytes(), None)
        .is_ok());
    let with = |k: &str, val: Value| {
        let mut c = good.clone();
        c[k] = val;
        raw(hs, &c, Some(SECRET))
    };
    let cases = [
        (with("exp", (now - 5).into()), TokenError::Expired),
        (with("nbf", (now + 100).into()), TokenError::NotYetValid),
        (with("iat", (now + 100).into()), TokenError::IssuedInFuture),
        (with("aud", "other".into()), TokenError::Audience),
        (with("iss", "evil".into()), TokenError::Issuer),
        (with("sub", 5.into()), TokenError::BadClaim("sub".into())),
        (
            with("acl", serde_json::json!({"pub": ["a/#/b"]})),
            TokenError::BadClaim(
                "acl claim pub[0]: invalid topic filter \"a/#/b\": '#' must be the last level"
                    .into(),
            ),
        ),
        (
            raw(hs, &good, Some(b"another-secret-of-thirty-two-bytes!!")),
            TokenError::BadSignature,
        ),
        (raw(r#"{"alg":"none"}"#, &good, None), TokenError::AlgNone),
        (
            raw(r#"{"alg":"HS512"}"#, &good, Some(SECRET)),
            TokenError::Algorithm("HS512".into()),
        ),
        ("not a token".to_string(), TokenError::Malformed),
    ];
    for (t, want) in cases {
        let got = v.verify(t.as_bytes(), None);
        match (&got, &want) {
            // The filter message's wording belongs to the ACL module.
            (Err(TokenError::BadClaim(g)), TokenError::BadClaim(w)) if w.starts_with("acl") => {
                assert!(g.starts_with("acl claim pub[0]"), "{g}")
            }
            _ => assert_eq!(got, Err(want)),
        }
    }
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        v.verify(raw(hs, &no_exp, Some(SECRET)).as_bytes(), None),
        Err(TokenError::MissingClaim("exp".into()))
    );
    assert_eq!(
        v.verify(&vec![b'a'; MAX_TOKEN_LEN + 1], None),
        Err(TokenError::TooLarge)
    );
}

#[test]
fn public_keys_and_key_confusion() {
    let dir = tempfile::tempdir().unwrap();
    for (alg, rc) in [
        (Algorithm::ES256, &rcgen::PKCS_ECDSA_P256_SHA256),
        (Algorithm::EdDSA, &rcgen::PKCS_ED25519),
        (Algorithm::RS256, &rcgen::PKCS_RSA_SHA256),
    ] {
        let kp = rcgen::KeyPair::generate_for(rc).unwrap();
        let public = kp.public_key_pem();
        let private = kp.serialize_pem();
        let v = TokenVerifier::load_test(&config(dir.path(), "pub.pem", public.as_bytes(), false))
            .unwrap();
        let t = mint(alg, private.as_bytes(), &req("d")).unwrap();
        assert_eq!(
            v.verify(t.as_bytes(), None).unwrap().username,
            "d",
            "{alg:?}"
        );
        // The classic confusion: HS256 "signed" with the public key's PEM bytes.
        let forged = raw(
            r#"{"alg":"HS256"}"#,
            &serde_json::json!({"sub": "admin", "exp": now_unix() + 60}),
            Some(public.as_bytes()),
        );
        assert!(
            matches!(
                v.verify(forged.as_bytes(), None),
                Err(TokenError::Algorithm(_)) | Err(TokenError::KeyMismatch(_))
            ),
            "{alg:?}"
        );
        // A private key is not a verification key.
        assert!(TokenVerifier::load_test(&config(
            dir.path(),
            "priv.pem",
            private.as_bytes(),
            false
        ))
        .is_err());
    }
    // token_algorithms that fit no key: the error names the option's line.
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut cfg = config(dir.path(), "pub.pem", kp.public_key_pem().as_bytes(), false);
    cfg.algorithms = Some(Located {
        value: vec!["RS256".into()],
        at: crate::config::model::ConfLoc {
            file: "b.conf".into(),
            line: 7,
        },
    });
    let e = TokenVerifier::load_test(&cfg).unwrap_err();
    assert!(
        e.starts_with("test.conf:1: ") && e.contains("token_algorithms (b.conf:7)"),
        "{e}"
    );
    // A short secret is refused.
    let e =
        TokenVerifier::load_test(&config(dir.path(), "short", b"tooshort\n", false)).unwrap_err();
    assert!(e.contains("at least 32 bytes"), "{e}");
}

#[test]
fn jwks_chooses_by_kid() {
    let dir = tempfile::tempdir().unwrap();
    let jwk = |kid: &str, secret: &[u8]| serde_json::json!({"kty": "oct", "kid": kid, "alg": "HS256", "k": URL_SAFE_NO_PAD.encode(secret)});
    let other: &[u8] = b"ANOTHER-secret-0123456789abcdef0123";
    let set = serde_json::json!({"keys": [jwk("one", SECRET), jwk("two", other)]});
    let v = TokenVerifier::load_test(&config(
        dir.path(),
        "jwks.json",
        set.to_string().as_bytes(),
        true,
    ))
    .unwrap();
    let mut r = req("x");
    r.kid = Some("two".into());
    let t = mint(Algorithm::HS256, other, &r).unwrap();
    let g = v.verify(t.as_bytes(), None).unwrap();
    assert_eq!(&*g.key_id, "kid:two");
    assert!(v.has_key("kid:two"));
    r.kid = Some("three".into());
    let t = mint(Algorithm::HS256, other, &r).unwrap();
    assert_eq!(
        v.verify(t.as_bytes(), None),
        Err(TokenError::UnknownKey("unknown kid".into()))
    );
    r.kid = None;
    let t = mint(Algorithm::HS256, other, &r).unwrap();
    assert_eq!(
        v.verify(t.as_bytes(), None),
        Err(TokenError::UnknownKey("no kid".into()))
    );
    // The right kid with the wrong key's signature.
    r.kid = Some("one".into());
    let t = mint(Algorithm::HS256, other, &r).unwrap();
    assert_eq!(v.verify(t.as_bytes(), None), Err(TokenError::BadSignature));
}

#[test]
fn claims_are_judged_by_the_acl_matcher() {
    use crate::security::acl::{Access, Acl, AclRequest, Grants};
    use crate::security::identity::{AuthMethod, Identity};
    let acl = Arc::new(
        Acl::parse(
            "user dev-1\ntopic deny devices/dev-1/up/secret\nrole viewer\ntopic read status/#\n",
            "acl.conf",
        )
        .unwrap(),
    );
    let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
        "acl": {"pub": ["devices/%u/up/#"], "sub": ["cmd/%c"]},
        "roles": ["viewer"]
    }))
    .unwrap();
    let scope = scope_of(&claims).unwrap().unwrap();
    let mut id = Identity::with_username("c-7", "dev-1");
    id.auth = AuthMethod::Token;
    id.set_token(Some(Arc::new(TokenSession::new(TokenGrant {
        username: "dev-1".into(),
        valid_until: u64::MAX,
        scope: Some(Arc::new(scope)),
        key_id: "k".into(),
    }))));
    let g = Grants::new(acl.clone(), &id);
    let ask = |access, topic| {
        let r = AclRequest::new(access, topic);
        let a = g.decide(&id, &r).allowed;
        // The file matcher given the same claims answers the same.
        let b = acl.decide_with(&id, id.claims().as_deref(), &r).allowed;
        assert_eq!(a, b, "{access:?} {topic}");
        a
    };
    assert!(ask(Access::Write, "devices/dev-1/up/temp"));
    assert!(!ask(Access::Write, "devices/dev-2/up/temp"));
    // The file's deny is tried before the token's allow.
    assert!(!ask(Access::Write, "devices/dev-1/up/secret"));
    assert!(ask(Access::Read, "cmd/c-7"));
    assert!(!ask(Access::Read, "cmd/c-8"));
    assert!(ask(Access::Subscribe, "cmd/c-7"));
    // pub grants no read.
    assert!(!ask(Access::Subscribe, "devices/dev-1/up/+"));
    // The role named by the claim.
    assert!(ask(Access::Read, "status/x"));
    assert!(ask(Access::Subscribe, "status/#"));
    // A refreshed token with other claims changes the answer once recompiled.
    let ts = id.token().cloned().unwrap();
    let e = ts.epoch();
    ts.replace(TokenGrant {
        username: "dev-1".into(),
        valid_until: u64::MAX,
        scope: Some(Arc::new(ClaimRules::new(&[], &[], vec![]).unwrap())),
        key_id: "k".into(),
    });
    assert_ne!(ts.epoch(), e);
    let g2 = Grants::new(acl, &id);
    assert!(
        !g2.decide(
            &id,
            &AclRequest::new(Access::Write, "devices/dev-1/up/temp")
        )
        .allowed
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn verifier() -> TokenVerifier {
        let dir = tempfile::tempdir().unwrap();
        TokenVerifier::load_test(&config(dir.path(), "k", SECRET, false)).unwrap()
    }

    proptest! {
        /// Whatever a peer sends as a password, verification answers (never panics), and
        /// only a token signed with the key is accepted.
        #[test]
        fn arbitrary_bytes_are_refused_without_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let v = verifier();
            let _ = looks_like_jwt(&b);
            prop_assert!(v.verify(&b, None).is_err());
            let _ = unverified_claims(&b);
        }

        /// Tokens of the right shape with arbitrary header and claim JSON: refused unless the
        /// HMAC is right, and never a panic in the claims' parsing.
        #[test]
        fn arbitrary_json_parts_are_refused_without_panic(
            h in "\\{[ -~]{0,40}\\}",
            c in "\\{[ -~]{0,80}\\}",
            signed in any::<bool>(),
        ) {
            let v = verifier();
            let t = raw(&h, &Value::String(String::new()), None);
            let body = URL_SAFE_NO_PAD.encode(&c);
            let head = t.split('.').next().unwrap_or_default().to_string();
            let t = if signed {
                use hmac::{Hmac, Mac};
                let input = format!("{head}.{body}");
                let mut m = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
                m.update(input.as_bytes());
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
            } else {
                format!("{head}.{body}.AAAA")
            };
            let r = v.verify(t.as_bytes(), None);
            if !signed {
                prop_assert!(r.is_err());
            }
        }
    }
}
