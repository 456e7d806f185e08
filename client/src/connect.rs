//! The connect screen, for `agora-client` started without a token: the server's address, a
//! player name and the token endpoint are typed in (Tab or the arrows move between them,
//! Enter connects). A connection that fails goes back to it with Escape, to change what was
//! typed.

use crate::ClientSystems;
use crate::hud::{panel, text};
use crate::net::{Connection, ServerOptions, TokenSource};
use agora_shared::protocol::MAX_NAME_CHARS;
use agora_shared::text::normal_name;
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;
use std::net::SocketAddr;

/// The token endpoint's port that `serve` uses by default.
pub const TOKEN_PORT: u16 = 5001;
/// Longest text a field takes.
const FIELD_CHARS: usize = 200;
const LABELS: [&str; 3] = ["Server (UDP)", "Player name", "Token endpoint"];

/// What is typed on the connect screen.
#[derive(Resource, Clone, Debug, Default)]
pub struct ConnectForm {
    /// Server address, player name, token endpoint (empty: the server's host, port 5001).
    pub fields: [String; 3],
    /// The field being typed in.
    pub focus: usize,
    /// Why the last Enter did not connect.
    pub problem: Option<String>,
}

impl ConnectForm {
    /// The form with the server's address filled in.
    pub fn at(server: Option<SocketAddr>) -> Self {
        let mut form = Self::default();
        if let Some(addr) = server {
            form.fields[0] = addr.to_string();
            form.focus = 1;
        }
        form
    }

    /// Where and how to connect, or what to fix.
    pub fn options(&self) -> Result<ServerOptions, String> {
        let [server, player, url] = self.fields.each_ref().map(|f| f.trim());
        let addr: SocketAddr = server.parse().map_err(|_| {
            format!("\"{server}\" is no server address: IP and port, e.g. 127.0.0.1:5000")
        })?;
        let name = normal_name(player);
        if !name.chars().any(char::is_alphanumeric) || name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "a player name needs a letter or digit, and at most {MAX_NAME_CHARS} characters"
            ));
        }
        let url = if url.is_empty() {
            format!("http://{}", SocketAddr::new(addr.ip(), TOKEN_PORT))
        } else if url.starts_with("http://") {
            url.to_string()
        } else {
            return Err(format!(
                "\"{url}\" is no token endpoint: http://HOST:PORT, e.g. http://127.0.0.1:5001"
            ));
        };
        Ok(ServerOptions {
            addr,
            tokens: TokenSource::Url { url, player: name },
        })
    }

    /// The screen's words.
    pub fn text(&self) -> String {
        let mut lines = vec!["Join an Agora town".to_string(), String::new()];
        for (i, (label, value)) in LABELS.iter().zip(&self.fields).enumerate() {
            let (mark, cursor) = if i == self.focus {
                (">", "_")
            } else {
                (" ", "")
            };
            let shown = if value.is_empty() && i == 2 {
                "(the server's host, port 5001)"
            } else {
                value
            };
            lines.push(format!("{mark} {label}: {shown}{cursor}"));
        }
        lines.push(String::new());
        lines.push("Tab or arrows: next field   Enter: connect".into());
        if let Some(problem) = &self.problem {
            lines.push(String::new());
            lines.push(problem.clone());
        }
        lines.join("\n")
    }

    fn typed(&mut self, key: &Key) -> bool {
        let field = &mut self.fields[self.focus];
        match key {
            Key::Enter => return true,
            Key::Tab | Key::ArrowDown => self.focus = (self.focus + 1) % LABELS.len(),
            Key::ArrowUp => self.focus = (self.focus + LABELS.len() - 1) % LABELS.len(),
            Key::Backspace => {
                field.pop();
            }
            Key::Space if field.chars().count() < FIELD_CHARS => field.push(' '),
            Key::Character(typed) => {
                let room = FIELD_CHARS.saturating_sub(field.chars().count());
                field.extend(typed.chars().filter(|c| !c.is_control()).take(room));
            }
            _ => {}
        }
        false
    }
}

#[derive(Component)]
struct FormText;

pub fn plugin(app: &mut App) {
    app.add_systems(OnEnter(Connection::Choosing), spawn_screen)
        .add_systems(
            Update,
            (
                type_in.run_if(in_state(Connection::Choosing)),
                back_to_the_form
                    .run_if(in_state(Connection::Lost).and_then(resource_exists::<ConnectForm>)),
            )
                .in_set(ClientSystems::Receive),
        )
        .add_systems(
            Update,
            show.run_if(in_state(Connection::Choosing))
                .in_set(ClientSystems::Present),
        );
}

fn spawn_screen(mut commands: Commands, form: Res<ConnectForm>) {
    commands.spawn((
        FormText,
        DespawnOnExit(Connection::Choosing),
        Text::new(form.text()),
        text(20.0),
        panel(),
        Node {
            position_type: PositionType::Absolute,
            left: Val::Percent(20.0),
            right: Val::Percent(20.0),
            top: Val::Percent(30.0),
            padding: UiRect::all(Val::Px(16.0)),
            border_radius: BorderRadius::all(Val::Px(4.0)),
            ..default()
        },
    ));
}

fn type_in(
    mut commands: Commands,
    mut keys: MessageReader<KeyboardInput>,
    mut form: ResMut<ConnectForm>,
    mut next: ResMut<NextState<Connection>>,
) {
    for key in keys.read() {
        if !key.state.is_pressed() || !form.typed(&key.logical_key) {
            continue;
        }
        match form.options() {
            Ok(options) => {
                form.problem = None;
                commands.insert_resource(options);
                next.set(Connection::GettingToken);
                return;
            }
            Err(problem) => form.problem = Some(problem),
        }
    }
}

/// Escape after a failed connection: back to the form, to change what was typed.
fn back_to_the_form(keys: Res<ButtonInput<KeyCode>>, mut next: ResMut<NextState<Connection>>) {
    if keys.just_pressed(KeyCode::Escape) {
        next.set(Connection::Choosing);
    }
}

fn show(form: Res<ConnectForm>, mut texts: Query<&mut Text, With<FormText>>) {
    let words = form.text();
    for mut text in &mut texts {
        if text.0 != words {
            text.0 = words.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(server: &str, player: &str, url: &str) -> ConnectForm {
        ConnectForm {
            fields: [server.into(), player.into(), url.into()],
            ..ConnectForm::default()
        }
    }

    #[test]
    fn a_filled_form_is_where_and_how_to_connect() {
        let options = form(" 10.0.0.2:5000 ", "Ada", "").options().unwrap();
        assert_eq!(options.addr, "10.0.0.2:5000".parse().unwrap());
        let TokenSource::Url { url, player } = options.tokens else {
            panic!("not an endpoint");
        };
        assert_eq!(
            (url.as_str(), player.as_str()),
            ("http://10.0.0.2:5001", "Ada")
        );
        let own = form("127.0.0.1:5000", "Ada", "http://127.0.0.1:6001").options();
        assert!(matches!(
            own.unwrap().tokens,
            TokenSource::Url { url, .. } if url == "http://127.0.0.1:6001"
        ));
    }

    #[test]
    fn what_is_wrong_is_said() {
        let no_port = form("127.0.0.1", "Ada", "").options().unwrap_err();
        assert!(no_port.contains("IP and port"), "{no_port}");
        let no_name = form("127.0.0.1:5000", " ~ ", "").options().unwrap_err();
        assert!(no_name.contains("letter or digit"), "{no_name}");
        let https = form("127.0.0.1:5000", "Ada", "ftp://x")
            .options()
            .unwrap_err();
        assert!(https.contains("http://HOST:PORT"), "{https}");
    }

    #[test]
    fn typing_moves_between_fields_and_enter_submits() {
        let mut form = ConnectForm::at(Some("127.0.0.1:5000".parse().unwrap()));
        assert_eq!(form.focus, 1, "the address is there: the name is next");
        for c in ["A", "d", "a", "x"] {
            form.typed(&Key::Character(c.into()));
        }
        form.typed(&Key::Backspace);
        form.typed(&Key::Tab);
        form.typed(&Key::Tab);
        assert_eq!(form.focus, 0, "round to the first field");
        form.typed(&Key::ArrowUp);
        assert_eq!(form.focus, 2);
        assert!(form.typed(&Key::Enter));
        assert_eq!(form.fields[1], "Ada");
        assert!(
            form.text()
                .contains("> Token endpoint: (the server's host, port 5001)_")
        );
    }
}
