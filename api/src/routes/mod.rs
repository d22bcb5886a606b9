//! HTTP handlers, one module per resource.

pub mod account;
pub mod auth;
pub mod channels;
pub mod chat;
pub mod embed;
pub mod health;
pub mod restreams;
pub mod server;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod webhooks;
