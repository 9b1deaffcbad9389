//! One integration-test binary: every module starts real servers with `helpers::spawn_app()`
//! and talks to them over real HTTP and real WebSockets.
#![allow(clippy::unwrap_used)]

mod auth;
mod backend;
mod browser_calls;
mod calendar;
mod calls;
mod chat;
mod cli;
mod cluster;
mod fake_backend;
mod fake_google;
mod hardening;
mod health;
mod helpers;
mod identity;
mod isolation;
mod lifecycle;
mod openapi;
mod operations;
mod postgres;
mod presence;
mod process;
mod raw_ws;
mod rest;
mod rooms;
mod ws_connect;
mod ws_frames;
