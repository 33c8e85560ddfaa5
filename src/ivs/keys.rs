//! The P-384 key pair that signs participant tokens: generated once, kept in Postgres (table
//! `signing_keys`), shared by every instance, and its public half served at
//! `GET /api/token/public-key`.

use p384::SecretKey;
use p384::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::RngCore;
use sqlx::PgPool;

/// A key pair in PEM: PKCS#8 private key, SPKI public key.
#[derive(Clone)]
pub struct KeyPair {
    /// PKCS#8 PEM private key; `Debug` output redacts it.
    pub private_key_pem: String,
    /// SPKI PEM public key, served at `GET /api/token/public-key`.
    pub public_key_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("private_key_pem", &"[redacted]")
            .field("public_key_pem", &self.public_key_pem)
            .finish()
    }
}

/// A stored signing key with its id (the last segment of the public key ARN).
#[derive(Clone, Debug)]
pub struct SigningKey {
    /// A UUID; by default the last segment of the `kid` ARN (`…:public-key/<key_id>`).
    pub key_id: String,
    /// The P-384 key pair.
    pub pair: KeyPair,
}

/// Makes a fresh P-384 key pair.
pub fn generate_key_pair() -> KeyPair {
    let secret = loop {
        let mut bytes = [0u8; 48];
        rand::rng().fill_bytes(&mut bytes);
        if let Ok(secret) = SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let private_key_pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a P-384 key always encodes")
        .to_string();
    let public_key_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-384 public key always encodes");
    KeyPair {
        private_key_pem,
        public_key_pem,
    }
}

/// The active signing key; the first caller on a new database creates it, concurrent callers on
/// other instances get the same one.
pub async fn load_or_create(db: &PgPool) -> Result<SigningKey, sqlx::Error> {
    let pair = generate_key_pair();
    let key_id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO signing_keys (name, key_id, private_key_pem, public_key_pem)
         VALUES ('participant-token', $1, $2, $3) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&key_id)
    .bind(&pair.private_key_pem)
    .bind(&pair.public_key_pem)
    .execute(db)
    .await?;
    let (key_id, private_key_pem, public_key_pem): (String, String, String) = sqlx::query_as(
        "SELECT key_id, private_key_pem, public_key_pem FROM signing_keys
         WHERE name = 'participant-token'",
    )
    .fetch_one(db)
    .await?;
    Ok(SigningKey {
        key_id,
        pair: KeyPair {
            private_key_pem,
            public_key_pem,
        },
    })
}
