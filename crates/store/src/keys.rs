//! API keys. A key is shown to its owner once; the database keeps only its SHA-256 digest, so a
//! stolen database yields no usable key. Keys are random UUIDv4 strings like the original's, so
//! the original clients (which expect that shape) accept them.

use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use crate::{now_unix_nanos, Result, Store, StoreError};

/// A stored API key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Database id.
    pub id: i64,
    /// Who it belongs to.
    pub name: String,
    /// Created by anonymous self-registration.
    pub anonymous: bool,
    /// Unix ns.
    pub created_at: i64,
    /// Unix ns, when revoked.
    pub revoked_at: Option<i64>,
}

/// The secret text of an API key. Its `Debug` output hides it so that it never reaches a log, and
/// two secrets compare in constant time.
#[derive(Clone)]
pub struct ApiKeySecret(String);

impl PartialEq for ApiKeySecret {
    fn eq(&self, other: &ApiKeySecret) -> bool {
        digests_match(&self.digest(), &other.digest())
    }
}

impl Eq for ApiKeySecret {}

/// Compares two key digests in time that depends only on their lengths, never on where they
/// first differ.
fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

impl ApiKeySecret {
    /// A new random key.
    pub fn generate() -> ApiKeySecret {
        ApiKeySecret(uuid_v4())
    }

    /// Wraps a key a client sent.
    pub fn new(text: impl Into<String>) -> ApiKeySecret {
        ApiKeySecret(text.into())
    }

    /// The key itself, to show its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }
}

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeySecret(***)")
    }
}

fn uuid_v4() -> String {
    uuid_v4_text(rand_bytes())
}

/// 16 bytes shaped as a version 4 UUID in its text form (version and variant bits set), the
/// form of every API key (the original clients and server expect UUIDs).
pub fn uuid_v4_text(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn rand_bytes() -> [u8; 16] {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

const KEY_COLUMNS: &str = "id, name, anonymous, created_at, revoked_at";

fn api_key_from_row(row: &sqlx::any::AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        anonymous: crate::sql::flag(row, "anonymous")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates a key for `name` and returns it; the secret is not stored and cannot be shown again.
    pub async fn create_api_key(&self, name: &str) -> Result<(ApiKey, ApiKeySecret)> {
        let name = name.trim();
        if name.is_empty() {
            return Err(StoreError::InvalidValue {
                field: "name",
                reason: "empty".into(),
            });
        }
        if self.active_api_key_named(name).await?.is_some() {
            return Err(StoreError::DuplicateApiKeyName(name.to_owned()));
        }
        let secret = ApiKeySecret::generate();
        let key = self.insert_api_key(name, &secret, false).await?;
        Ok((key, secret))
    }

    /// Stores a key a client chose itself (anonymous self-registration, as the original's final
    /// version allowed). Returns the key, new or existing.
    pub async fn register_anonymous_api_key(&self, secret: &ApiKeySecret) -> Result<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (name, key_hash, anonymous, created_at) VALUES ('anonymous', $1, TRUE, $2) \
             ON CONFLICT (key_hash) DO NOTHING",
        )
        .bind(secret.digest())
        .bind(now_unix_nanos())
        .execute(self.pool())
        .await?;
        self.find_api_key(secret)
            .await?
            .ok_or_else(|| StoreError::UnknownApiKey("anonymous".into()))
    }

    async fn insert_api_key(
        &self,
        name: &str,
        secret: &ApiKeySecret,
        anonymous: bool,
    ) -> Result<ApiKey> {
        let row = sqlx::query(&format!(
            "INSERT INTO api_keys (name, key_hash, anonymous, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING {KEY_COLUMNS}"
        ))
        .bind(name)
        .bind(secret.digest())
        .bind(anonymous)
        .bind(now_unix_nanos())
        .fetch_one(self.pool())
        .await?;
        api_key_from_row(&row)
    }

    /// The key with this secret, revoked or not.
    ///
    /// The index lookup compares SHA-256 digests, never the secret: how long it takes can tell at
    /// most how many leading digest bytes of a guess match a stored digest, which says nothing
    /// about any key. The row found is then checked again in constant time, so the decision to
    /// let a request in never rests on an early-exit comparison.
    pub async fn find_api_key(&self, secret: &ApiKeySecret) -> Result<Option<ApiKey>> {
        find_api_key(self.pool(), secret).await
    }

    /// The key with this secret if it exists and is not revoked.
    pub async fn authenticate(&self, secret: &ApiKeySecret) -> Result<Option<ApiKey>> {
        authenticate(self.pool(), secret).await
    }

    /// Every key, oldest first.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Revokes the active key named `name`; its requests are refused from now on.
    pub async fn revoke_api_key(&self, name: &str) -> Result<ApiKey> {
        let key = self
            .active_api_key_named(name)
            .await?
            .ok_or_else(|| StoreError::UnknownApiKey(name.to_owned()))?;
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 RETURNING {KEY_COLUMNS}"
        ))
        .bind(now_unix_nanos())
        .bind(key.id)
        .fetch_one(self.pool())
        .await?;
        api_key_from_row(&row)
    }

    /// Revokes the key with database id `id`, named or anonymous; its requests are refused from
    /// now on. Revoking a revoked key keeps its first revocation time.
    pub async fn revoke_api_key_id(&self, id: i64) -> Result<ApiKey> {
        let row = sqlx::query(&format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 RETURNING {KEY_COLUMNS}"
        ))
        .bind(now_unix_nanos())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        match row {
            Some(row) => api_key_from_row(&row),
            None => Err(StoreError::UnknownApiKeyId(id)),
        }
    }

    /// How many anonymous keys are active (not revoked).
    pub async fn active_anonymous_api_keys(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM api_keys WHERE anonymous AND revoked_at IS NULL")
                .fetch_one(self.pool())
                .await?
                .try_get(0)?,
        )
    }

    async fn active_api_key_named(&self, name: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE name = $1 AND revoked_at IS NULL AND NOT anonymous"
        ))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }
}

/// The key whose digest matches `secret`'s, compared in constant time, if any.
async fn find_api_key(pool: &sqlx::AnyPool, secret: &ApiKeySecret) -> Result<Option<ApiKey>> {
    let digest = secret.digest();
    let row = sqlx::query(&format!(
        "SELECT {KEY_COLUMNS}, key_hash FROM api_keys WHERE key_hash = $1"
    ))
    .bind(&digest)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.try_get("key_hash")?;
    if !digests_match(&stored, &digest) {
        return Ok(None);
    }
    api_key_from_row(&row).map(Some)
}

/// The key with this secret if it exists and is not revoked.
pub(crate) async fn authenticate(
    pool: &sqlx::AnyPool,
    secret: &ApiKeySecret,
) -> Result<Option<ApiKey>> {
    let key = find_api_key(pool, secret).await?;
    Ok(key.filter(|key| key.revoked_at.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_uuid_v4() {
        let key = ApiKeySecret::generate();
        let text = key.expose();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(ApiKeySecret::generate(), key);
    }

    #[test]
    fn secrets_compare_by_value() {
        let key = ApiKeySecret::generate();
        assert_eq!(key, ApiKeySecret::new(key.expose()));
        assert_ne!(key, ApiKeySecret::generate());
        assert_ne!(key, ApiKeySecret::new(""));
    }

    #[test]
    fn digests_match_only_when_equal_and_of_equal_length() {
        let digest = ApiKeySecret::new("a").digest();
        assert!(digests_match(&digest, &digest.clone()));
        let mut last_differs = digest.clone();
        *last_differs.last_mut().unwrap() ^= 1;
        assert!(!digests_match(&digest, &last_differs));
        assert!(!digests_match(&digest, &digest[..31]));
        assert!(!digests_match(&digest, &[]));
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = ApiKeySecret::new("00000000-secret");
        assert!(!format!("{key:?}").contains("secret"));
    }
}
