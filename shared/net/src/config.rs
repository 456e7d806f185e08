//! The renet connection config, the same on both sides of the wire.

use agora_shared::protocol::{Channel, MAX_MESSAGE_BYTES};
use renet::{ChannelConfig, ConnectionConfig, SendType};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Both channels (reliable-ordered for commands, chat, spawns and activity; unreliable for
/// positions), for the server and every client.
pub fn connection_config() -> ConnectionConfig {
    let channels = vec![
        ChannelConfig {
            channel_id: Channel::Reliable.into(),
            max_memory_usage_bytes: 64 * MAX_MESSAGE_BYTES,
            send_type: SendType::ReliableOrdered {
                resend_time: Duration::from_millis(200),
            },
        },
        ChannelConfig {
            channel_id: Channel::Unreliable.into(),
            max_memory_usage_bytes: 16 * MAX_MESSAGE_BYTES,
            send_type: SendType::Unreliable,
        },
    ];
    ConnectionConfig {
        available_bytes_per_tick: 60_000,
        server_channels_config: channels.clone(),
        client_channels_config: channels,
    }
}

/// Unix time, as netcode wants it.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
