//! Our own access-token provider for google-calendar3: it refreshes against the configured
//! token URL (yup-oauth2 hard-codes Google's), caches the token until a minute before it
//! expires, lets one refresh run at a time per user, and can be told to forget the token when
//! Google answers 401.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use google_calendar3::common::GetToken;

use super::oauth::{self, GoogleConfig, HttpClient, TokenError};

/// Refresh this long before the access token expires.
const EARLY: Duration = Duration::from_secs(60);
/// Assumed lifetime when Google does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3000);
/// Longest lifetime believed: an absurd `expires_in` (say `u64::MAX`) would otherwise overflow
/// the clock, and access tokens never live a day anyway.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A user's access tokens, from their refresh token.
#[derive(Clone)]
pub struct RefreshTokenAuth {
    client: HttpClient,
    config: Arc<GoogleConfig>,
    refresh_token: Arc<str>,
    cache: Arc<tokio::sync::Mutex<Option<(String, Instant)>>>,
}

impl RefreshTokenAuth {
    pub fn new(client: HttpClient, config: Arc<GoogleConfig>, refresh_token: String) -> Self {
        Self { client, config, refresh_token: Arc::from(refresh_token), cache: Arc::default() }
    }

    /// Forgets the cached access token (Google answered 401), so the next call refreshes.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn token(&self) -> Result<String, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expires)) = cache.as_ref()
            && Instant::now() + EARLY < *expires
        {
            return Ok(token.clone());
        }
        let fresh = oauth::refresh(&self.client, &self.config, &self.refresh_token).await?;
        let lifetime =
            fresh.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs).min(MAX_LIFETIME);
        *cache = Some((fresh.access_token.clone(), Instant::now() + lifetime));
        Ok(fresh.access_token)
    }
}

impl GetToken for RefreshTokenAuth {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&str],
    ) -> Pin<Box<dyn Future<Output = Result<Option<String>, BoxError>> + Send + 'a>> {
        Box::pin(async move { self.token().await.map(Some).map_err(|e| Box::new(e) as BoxError) })
    }
}
