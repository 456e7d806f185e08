//! The client's connection (its `net` plugin in a headless app) against a real server on
//! loopback: it gets in and is welcomed; a token the server did not sign, and a server that
//! goes away, end in words for the player, not a silent hang.

use agora_client::net::{self, Connection, Link, ServerOptions, TokenSource};
use agora_client::town::TownUpdate;
use agora_net::keys::ServerKey;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use common::server;
use std::time::{Duration, Instant};

mod common;

/// The client's connection in a headless app, starting from `start`: [`ServerOptions`] to
/// connect at once, or a connect screen's form.
fn client(start: impl Resource) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, bevy::input::InputPlugin))
        .configure_sets(
            Update,
            (
                agora_client::ClientSystems::Receive,
                agora_client::ClientSystems::Present,
                agora_client::ClientSystems::Send,
            )
                .chain(),
        )
        .add_message::<TownUpdate>()
        .insert_resource(start)
        .add_plugins(net::plugin);
    app
}

fn state(app: &App) -> Connection {
    *app.world().resource::<State<Connection>>().get()
}

/// Runs the server (if any) and the client until `done`; fails after `limit`.
fn run_until(
    server: &mut Option<App>,
    client: &mut App,
    what: &str,
    limit: Duration,
    done: impl Fn(&App) -> bool,
) {
    let started = Instant::now();
    while !done(client) {
        assert!(
            started.elapsed() < limit,
            "timed out: {what} (state {:?}, problem {:?})",
            state(client),
            client.world().resource::<Link>().problem
        );
        if let Some(server) = server {
            server.update();
        }
        client.update();
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_client_is_welcomed_and_then_hears_that_the_server_went_away() {
    let key = ServerKey::generate();
    let (server_app, addr) = server(&key, "10:00");
    let mut server_app = Some(server_app);
    let dir = tempfile::tempdir().unwrap();
    let token = common::token_file(&key, "ada", addr, dir.path());
    let mut app = client(ServerOptions {
        addr,
        tokens: TokenSource::File(token),
    });
    run_until(
        &mut server_app,
        &mut app,
        "welcome",
        Duration::from_secs(20),
        |app| state(app) == Connection::Playing,
    );
    let link = app.world().resource::<Link>();
    assert!(link.you.is_some());
    assert_eq!(link.world, "Maple Hollow");
    // The server stops answering (gone without a word, as a crashed one).
    server_app = None;
    run_until(
        &mut server_app,
        &mut app,
        "the loss noticed",
        Duration::from_secs(40),
        |app| state(app) == Connection::Lost,
    );
    let link = app.world().resource::<Link>();
    let problem = link.problem.clone().unwrap_or_default();
    assert!(
        problem.contains("lost") || problem.contains("timed out") || problem.contains("no answer"),
        "{problem}"
    );
    assert!(link.retry_at.is_some(), "a lost server is tried again");
    assert!(link.you.is_none());
}

#[test]
fn a_token_the_server_did_not_sign_is_refused_in_words() {
    let key = ServerKey::generate();
    let (server_app, addr) = server(&key, "10:00");
    let mut server_app = Some(server_app);
    let dir = tempfile::tempdir().unwrap();
    let forged = common::token_file(&ServerKey::generate(), "mallory", addr, dir.path());
    let mut app = client(ServerOptions {
        addr,
        tokens: TokenSource::File(forged),
    });
    run_until(
        &mut server_app,
        &mut app,
        "a refusal",
        Duration::from_secs(40),
        |app| state(app) == Connection::Lost,
    );
    let problem = app.world().resource::<Link>().problem.clone().unwrap();
    assert!(problem.contains("token"), "{problem}");
}

#[test]
fn a_token_for_another_server_is_refused_before_sending_anything() {
    let dir = tempfile::tempdir().unwrap();
    let key = ServerKey::generate();
    let elsewhere = "127.0.0.1:9".parse().unwrap();
    let token = common::token_file(&key, "ada", elsewhere, dir.path());
    let mut app = client(ServerOptions {
        addr: "127.0.0.1:5000".parse().unwrap(),
        tokens: TokenSource::File(token),
    });
    run_until(
        &mut None,
        &mut app,
        "a refusal",
        Duration::from_secs(10),
        |app| state(app) == Connection::Lost,
    );
    let problem = app.world().resource::<Link>().problem.clone().unwrap();
    assert!(
        problem.contains("127.0.0.1:9") && problem.contains("not 127.0.0.1:5000"),
        "{problem}"
    );
    let missing = TokenSource::File(dir.path().join("none.token"))
        .get(elsewhere)
        .unwrap_err();
    assert!(missing.contains("none.token"), "{missing}");
}

/// The connect screen, typed into as a player would (key by key): a name and the server's
/// token endpoint, then Enter, and the client is in; a bad address first is answered on the
/// screen, not tried.
#[test]
fn the_connect_screen_takes_what_is_typed_and_gets_in() {
    use agora_client::connect::ConnectForm;
    use bevy::input::ButtonState;
    use bevy::input::keyboard::{Key, KeyboardInput};

    let key = ServerKey::generate();
    let (server_app, addr) = server(&key, "10:00");
    let mut server_app = Some(server_app);
    let endpoint = agora_server::net::token_endpoint::start(
        "127.0.0.1:0".parse().unwrap(),
        key,
        vec![addr],
        Duration::from_secs(60),
    )
    .unwrap();
    let mut app = client(ConnectForm::default());
    app.update();
    assert_eq!(state(&app), Connection::Choosing);
    let press = |app: &mut App, key: Key| {
        app.world_mut().write_message(KeyboardInput {
            key_code: KeyCode::Unidentified(bevy::input::keyboard::NativeKeyCode::Unidentified),
            logical_key: key,
            state: ButtonState::Pressed,
            text: None,
            repeat: false,
            window: Entity::PLACEHOLDER,
        });
        app.update();
    };
    let type_text = |app: &mut App, text: &str| {
        for c in text.chars() {
            press(app, Key::Character(c.to_string().into()));
        }
    };
    type_text(&mut app, "nowhere");
    press(&mut app, Key::Enter);
    let problem = app.world().resource::<ConnectForm>().problem.clone();
    assert!(problem.unwrap().contains("IP and port"));
    assert_eq!(state(&app), Connection::Choosing, "nothing tried");
    for _ in 0.."nowhere".len() {
        press(&mut app, Key::Backspace);
    }
    type_text(&mut app, &addr.to_string());
    press(&mut app, Key::Tab);
    type_text(&mut app, "ada");
    press(&mut app, Key::Tab);
    type_text(&mut app, &format!("http://{}", endpoint.addr));
    press(&mut app, Key::Enter);
    run_until(
        &mut server_app,
        &mut app,
        "in through the connect screen",
        Duration::from_secs(20),
        |app| state(app) == Connection::Playing,
    );
    assert_eq!(app.world().resource::<Link>().world, "Maple Hollow");
}
