//! The chat box: Enter opens it, Enter sends, Escape drops the line. A line starting with `/`
//! is a command: `/team NAME` joins a team, `/leave` leaves it.

use crate::ClientSystems;
use crate::net::{Connection, Outgoing};
use crate::town::TownUpdate;
use crate::town::speech::ChatLog;
use agora_shared::protocol::{ClientMessage, MAX_NAME_CHARS, MAX_SAY_CHARS, ServerMessage};
use bevy::input::keyboard::{Key, KeyboardInput};
use bevy::prelude::*;

/// The line being typed, if the box is open.
#[derive(Resource, Default, Debug)]
pub struct ChatBox {
    pub open: bool,
    pub text: String,
}

pub fn plugin(app: &mut App) {
    app.init_resource::<ChatBox>().add_systems(
        Update,
        (
            // The connect screen takes the keys while it is up.
            type_line.run_if(not(in_state(Connection::Choosing))),
            note_refusals,
        )
            .in_set(ClientSystems::Receive),
    );
}

/// What a typed line asks for, or why it asks for nothing.
pub fn command(line: &str) -> Result<Option<ClientMessage>, String> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let Some(command) = line.strip_prefix('/') else {
        return Ok(Some(ClientMessage::Say { text: line.into() }));
    };
    let (name, rest) = command.split_once(' ').unwrap_or((command, ""));
    match (name, rest.trim()) {
        ("leave", _) => Ok(Some(ClientMessage::LeaveTeam)),
        ("team", "") => Err("/team needs a name: /team NAME".into()),
        ("team", team) if team.chars().count() > MAX_NAME_CHARS => Err(format!(
            "a team name has at most {MAX_NAME_CHARS} characters"
        )),
        ("team", team) => Ok(Some(ClientMessage::JoinTeam { team: team.into() })),
        _ => Err(format!("no command /{name}: try /team NAME or /leave")),
    }
}

fn type_line(
    mut keys: MessageReader<KeyboardInput>,
    mut chat: ResMut<ChatBox>,
    mut outgoing: MessageWriter<Outgoing>,
    mut log: ResMut<ChatLog>,
) {
    for key in keys.read() {
        if !key.state.is_pressed() {
            continue;
        }
        match (&key.logical_key, chat.open) {
            (Key::Enter, false) => chat.open = true,
            (Key::Enter, true) => {
                match command(&chat.text) {
                    Ok(Some(message)) => {
                        outgoing.write(Outgoing(message));
                    }
                    Ok(None) => {}
                    Err(why) => log.push("(you)".into(), why),
                }
                chat.text.clear();
                chat.open = false;
            }
            (Key::Escape, true) => {
                chat.text.clear();
                chat.open = false;
            }
            (Key::Backspace, true) => {
                chat.text.pop();
            }
            (Key::Space, true) => push(&mut chat.text, " "),
            (Key::Character(typed), true) => push(&mut chat.text, typed),
            _ => {}
        }
    }
}

/// Adds what was typed, as far as the line's length limit allows.
fn push(line: &mut String, typed: &str) {
    let room = MAX_SAY_CHARS.saturating_sub(line.chars().count());
    line.extend(typed.chars().filter(|c| !c.is_control()).take(room));
}

/// The server's refusals go in the chat log, so a refused move or line is not silent.
fn note_refusals(mut updates: MessageReader<TownUpdate>, mut log: ResMut<ChatLog>) {
    for update in updates.read() {
        if let TownUpdate::Server(ServerMessage::Refused { reason }) = update {
            log.push("(server)".into(), reason.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_commands() {
        assert_eq!(
            command(" hello there "),
            Ok(Some(ClientMessage::Say {
                text: "hello there".into()
            }))
        );
        assert_eq!(command("   "), Ok(None));
        assert_eq!(
            command("/team blue crew"),
            Ok(Some(ClientMessage::JoinTeam {
                team: "blue crew".into()
            }))
        );
        assert_eq!(command("/leave"), Ok(Some(ClientMessage::LeaveTeam)));
        assert!(command("/team").unwrap_err().contains("/team NAME"));
        assert!(command("/dance").unwrap_err().contains("no command /dance"));
        assert!(command(&format!("/team {}", "x".repeat(MAX_NAME_CHARS + 1))).is_err());
    }

    #[test]
    fn a_line_stops_at_its_limit() {
        let mut line = String::new();
        for _ in 0..MAX_SAY_CHARS + 10 {
            push(&mut line, "é");
        }
        assert_eq!(line.chars().count(), MAX_SAY_CHARS);
        let mut line = String::new();
        push(&mut line, "a\u{7}b");
        assert_eq!(line, "ab");
    }
}
