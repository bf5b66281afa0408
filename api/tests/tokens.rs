//! Access tokens that must not get in: tampered, expired, unsigned, for another audience.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{JWT_SECRET, spawn_app};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, secret: &str) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn forged_and_stale_tokens_get_401() {
    let app = spawn_app().await;
    let user = app.user("mallory").await;
    let good = claims_of(&user.token);
    // The genuine claims re-signed with our key work: the cases below differ only in one thing.
    app.get("/api/users/me", &sign(&good, JWT_SECRET)).await.expect(200);

    let now = chrono::Utc::now().timestamp();
    let mut cases: Vec<(&str, String)> = Vec::new();
    let mut expired = good.clone();
    expired["iat"] = json!(now - 3600);
    expired["exp"] = json!(now - 1800);
    cases.push(("expired", sign(&expired, JWT_SECRET)));
    let mut audience = good.clone();
    audience["aud"] = json!("someone-else");
    cases.push(("wrong audience", sign(&audience, JWT_SECRET)));
    let mut issuer = good.clone();
    issuer["iss"] = json!("evil");
    cases.push(("wrong issuer", sign(&issuer, JWT_SECRET)));
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", sign(&no_exp, JWT_SECRET)));
    cases.push(("other key", sign(&good, "another-secret-another-secret-another")));
    let mut escalated = good.clone();
    escalated["sub"] = json!("999");
    let forged_payload = URL_SAFE_NO_PAD.encode(escalated.to_string());
    let parts: Vec<&str> = user.token.split('.').collect();
    cases.push(("tampered payload", format!("{}.{}.{}", parts[0], forged_payload, parts[2])));
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    cases.push(("alg none", format!("{none_header}.{}.", parts[1])));
    let hs512 =
        encode(&Header::new(Algorithm::HS512), &good, &EncodingKey::from_secret(JWT_SECRET.as_bytes())).unwrap();
    cases.push(("HS512", hs512));
    cases.push(("garbage", "not.a.jwt".to_owned()));

    for (case, token) in cases {
        let reply = app.get("/api/users/me", &token).await;
        assert_eq!(reply.status.as_u16(), 401, "{case}: {}", reply.body);
        assert!(reply.headers.contains_key("www-authenticate"), "{case}");
    }
    let no_header = app.request(reqwest::Method::GET, "/api/tasks", None, None).await;
    assert_eq!(no_header.expect_error(401), "missing_token");
}
