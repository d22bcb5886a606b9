//! Accounts as their owners manage them: a forgotten password reset through a real SMTP server
//! (the mail parsed, its link followed), a new e-mail, and deleting the account with everything
//! it owns.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::mail::SmtpServer;
use support::{DataDir, Server};

async fn login_status(server: &Server, name: &str, password: &str) -> u16 {
    let response = server.client.post(server.url("/api/auth/login")).json(&json!({"username_or_email": name, "password": password}));
    response.send().await.expect("login").status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let dir = DataDir::new();
    let mail_dir = DataDir::new();
    let smtp = SmtpServer::start(&mail_dir.0);
    let port = smtp.port.to_string();
    let server = Server::start(
        &dir.0,
        &[
            ("FERROCAST_MAIL__HOST", "127.0.0.1"),
            ("FERROCAST_MAIL__PORT", &port),
            ("FERROCAST_MAIL__TLS", "none"),
            ("FERROCAST_MAIL__FROM", "Ferrocast <noreply@tv.example>"),
        ],
    );
    let (old_token, _) = server.streamer("ana", "ana-live").await;

    let ask = |email: &'static str| server.client.post(server.url("/api/auth/password-reset")).json(&json!({"email": email})).send();
    // The same answer for an unknown address: nobody learns who has an account.
    assert_eq!(ask("nobody@example.com").await.expect("ask").status(), 202);
    assert_eq!(ask("ANA@example.com").await.expect("ask").status(), 202);
    let (to, subject, body) = smtp.wait_for_mail(1, Duration::from_secs(15));
    assert_eq!(smtp.mails().len(), 1, "no mail for the unknown address");
    assert_eq!(to, "ana@example.com");
    assert!(subject.contains("Reset"), "{subject}");
    let link = body.split_whitespace().find(|w| w.contains("/reset-password#token=")).unwrap_or_else(|| panic!("no link in {body}"));
    let (page, token) = link.split_once('#').expect("fragment");
    let token = token.strip_prefix("token=").expect("token");

    // Following the link opens the reset page (the app reads the token from the fragment, which
    // never reaches the server or its logs) and posts the new password.
    let page = page.replace("localhost", "127.0.0.1");
    assert_eq!(server.client.get(&page).send().await.expect("page").status(), 200);
    let confirm = |password: &'static str| {
        server.client.post(server.url("/api/auth/password-reset/confirm")).json(&json!({"token": token, "new_password": password})).send()
    };
    assert_eq!(confirm("password").await.expect("confirm").status(), 422, "a common password is refused, the link kept");
    assert_eq!(confirm("a brand new passphrase").await.expect("confirm").status(), 204);
    assert_eq!(confirm("another passphrase").await.expect("confirm").status(), 400, "a link works once");

    assert_eq!(login_status(&server, "ana", "a long password").await, 401);
    assert_eq!(login_status(&server, "ana", "a brand new passphrase").await, 200);
    let me = server.client.get(server.url("/api/me")).bearer_auth(&old_token).send().await.expect("me");
    assert_eq!(me.status(), 401, "the sessions from before the reset are signed out");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_changes_its_email_and_is_deleted_with_everything_it_owns() {
    let dir = DataDir::new();
    let server = Server::start(&dir.0, &[]);
    let (token, _) = server.streamer("ana", "ana-live").await;
    server.streamer("bob", "bob-live").await;

    let reset = server.client.post(server.url("/api/auth/password-reset")).json(&json!({"email": "ana@example.com"}));
    let reset = reset.send().await.expect("reset");
    assert_eq!(reset.status(), 503, "no [mail]: said plainly");
    let reset: Value = reset.json().await.expect("json");
    assert!(reset["error"]["message"].as_str().expect("message").contains("operator"), "{reset}");

    let change = |password: &'static str, email: &'static str| {
        server.client.post(server.url("/api/me/email")).bearer_auth(&token).json(&json!({"password": password, "email": email})).send()
    };
    assert_eq!(change("wrong password", "ana@new.example").await.expect("change").status(), 401);
    assert_eq!(change("a long password", "bob@example.com").await.expect("change").status(), 409);
    assert_eq!(change("a long password", "not an address").await.expect("change").status(), 422);
    let changed: Value = change("a long password", "Ana@New.Example").await.expect("change").json().await.expect("json");
    assert_eq!(changed["email"], "ana@new.example");
    assert_eq!(login_status(&server, "ana@new.example", "a long password").await, 200);

    let delete = |password: &'static str| {
        server.client.delete(server.url("/api/me")).bearer_auth(&token).json(&json!({"password": password})).send()
    };
    assert_eq!(delete("wrong password").await.expect("delete").status(), 401);
    assert_eq!(delete("a long password").await.expect("delete").status(), 204);
    assert_eq!(server.get_json("/api/channels/ana-live").await.0, 404, "the channel went with the account");
    assert_eq!(server.get_json("/api/channels/bob-live").await.0, 200, "other accounts stay");
    assert_eq!(login_status(&server, "ana", "a long password").await, 401);
    let me = server.client.get(server.url("/api/me")).bearer_auth(&token).send().await.expect("me");
    assert_eq!(me.status(), 401, "its sessions end with it");
    // The name is free again.
    let again = server
        .client
        .post(server.url("/api/auth/signup"))
        .json(&json!({"username": "ana", "email": "ana@example.com", "password": "a long password"}));
    assert_eq!(again.send().await.expect("signup").status(), 201);
}
