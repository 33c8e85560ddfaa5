//! Self-signed IVS participant tokens: JWTs signed with an EC P-384 key whose public half was
//! imported into IVS (`ImportPublicKey`); IVS checks the signature when the participant joins.
//!
//! Header `{"alg":"ES384","typ":"JWT","kid":"<public-key ARN>"}`; claims `exp`, `iat`, `jti`
//! (= participant id), `resource` (stage ARN), `topic` (stage id), `events_url`, `whip_url`,
//! `capabilities {allow_publish, allow_subscribe}`, `user_id`, `attributes`, `version: "1.0"`.
//! Signature: ECDSA P-384 / SHA-384 over the PKCS#8 key kept by [`super::keys`], made with aws-lc
//! from a key pair parsed once (parsing a PKCS#8 key checks it with a scalar multiplication, as
//! costly as the signature itself: `jsonwebtoken::encode` would do that for every token).

use std::collections::BTreeMap;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::arn::{random_id, stage_id};
use super::{Capability, ParticipantToken, ProviderError, ReservedParticipant, TokenRequest};

/// The capability claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityClaims {
    /// The token carries [`Capability::Publish`].
    pub allow_publish: bool,
    /// The token carries [`Capability::Subscribe`].
    pub allow_subscribe: bool,
}

/// The claim set of an IVS participant token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantClaims {
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issue time, Unix seconds.
    pub iat: i64,
    /// The participant id.
    pub jti: String,
    /// The stage ARN.
    pub resource: String,
    /// The stage id (last segment of the ARN).
    pub topic: String,
    /// The stage's events WebSocket endpoint.
    pub events_url: String,
    /// The stage's WHIP (WebRTC-HTTP ingest) endpoint.
    pub whip_url: String,
    /// What the participant may do.
    pub capabilities: CapabilityClaims,
    /// IVS participant user id (`viewer-<userId>` / `broadcaster-<userId>`).
    pub user_id: String,
    /// String-to-string attributes, at most [`MAX_ATTRIBUTES_BYTES`] in total.
    pub attributes: BTreeMap<String, String>,
    /// Always `"1.0"`.
    pub version: String,
}

/// Signs participant tokens with one P-384 key.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    kid: String,
    events_url: String,
    whip_url: String,
}

/// IVS limit on a token's attributes: 1 KB in total (keys and values).
pub const MAX_ATTRIBUTES_BYTES: usize = 1024;

impl TokenSigner {
    /// `private_key_pem` is a PKCS#8 P-384 key; `kid` the public key's ARN.
    pub fn new(
        private_key_pem: &str,
        kid: String,
        events_url: String,
        whip_url: String,
    ) -> Result<Self, ProviderError> {
        use p384::pkcs8::{DecodePrivateKey, EncodePrivateKey};
        let unusable =
            |e: &dyn std::fmt::Display| ProviderError::Token(format!("signing key unusable: {e}"));
        let der = p384::SecretKey::from_pkcs8_pem(private_key_pem)
            .map_err(|e| unusable(&e))?
            .to_pkcs8_der()
            .map_err(|e| unusable(&e))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der.as_bytes())
            .map_err(|e| unusable(&e))?;
        Ok(Self {
            key,
            rng: SystemRandom::new(),
            kid,
            events_url,
            whip_url,
        })
    }

    /// The `kid` header of every token: the public key's ARN.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Mints one token with the signer's own `events_url` / `whip_url`; the participant id is
    /// 12 random alphanumerics.
    pub fn sign(&self, request: &TokenRequest) -> Result<ParticipantToken, ProviderError> {
        self.sign_with_endpoints(request, &self.events_url, &self.whip_url)
    }

    /// Mints one token whose `events_url` / `whip_url` claims are the given stage endpoints
    /// (IVS `GetStage` → `stage.endpoints`), not the signer's own.
    ///
    /// Errors: [`ProviderError::Token`] when the claims cannot be encoded or signed.
    pub fn sign_with_endpoints(
        &self,
        request: &TokenRequest,
        events_url: &str,
        whip_url: &str,
    ) -> Result<ParticipantToken, ProviderError> {
        self.sign_as(request, random_id(12), events_url, whip_url)
    }

    /// A participant for `request` (12 random alphanumerics) and its token's expiry, chosen
    /// before the token is signed ([`sign_reserved`](Self::sign_reserved)).
    ///
    /// Errors: [`ProviderError::Token`] when the expiry is out of range.
    pub fn reserve(&self, request: &TokenRequest) -> Result<ReservedParticipant, ProviderError> {
        let exp = request.issued_at.unix_timestamp() + request.duration_seconds as i64;
        Ok(ReservedParticipant {
            participant_id: random_id(12),
            expires_at: time::OffsetDateTime::from_unix_timestamp(exp)
                .map_err(|e| ProviderError::Token(e.to_string()))?,
        })
    }

    /// Mints the token of `reserved` (from [`reserve`](Self::reserve) for the same `request`)
    /// with the signer's own endpoints: the same participant id and expiry.
    pub fn sign_reserved(
        &self,
        request: &TokenRequest,
        reserved: &ReservedParticipant,
    ) -> Result<ParticipantToken, ProviderError> {
        let token = self.sign_as(
            request,
            reserved.participant_id.clone(),
            &self.events_url,
            &self.whip_url,
        )?;
        debug_assert_eq!(token.expires_at, reserved.expires_at);
        Ok(token)
    }

    fn sign_as(
        &self,
        request: &TokenRequest,
        participant_id: String,
        events_url: &str,
        whip_url: &str,
    ) -> Result<ParticipantToken, ProviderError> {
        let iat = request.issued_at.unix_timestamp();
        let exp = iat + request.duration_seconds as i64;
        let claims = ParticipantClaims {
            exp,
            iat,
            jti: participant_id.clone(),
            resource: request.stage_arn.clone(),
            topic: stage_id(&request.stage_arn).to_owned(),
            events_url: events_url.to_owned(),
            whip_url: whip_url.to_owned(),
            capabilities: CapabilityClaims {
                allow_publish: request.capabilities.contains(&Capability::Publish),
                allow_subscribe: request.capabilities.contains(&Capability::Subscribe),
            },
            user_id: request.user_id.clone(),
            attributes: request.attributes.clone(),
            version: "1.0".to_owned(),
        };
        let mut header = Header::new(Algorithm::ES384);
        header.kid = Some(self.kid.clone());
        let token = self.encode(&header, &claims)?;
        let expires_at = time::OffsetDateTime::from_unix_timestamp(exp)
            .map_err(|e| ProviderError::Token(e.to_string()))?;
        Ok(ParticipantToken {
            token,
            participant_id,
            expires_at,
        })
    }
}

impl TokenSigner {
    /// A compact JWS: `base64url(header).base64url(claims).base64url(r || s)` (RFC 7515, ES384's
    /// fixed-size signature of RFC 7518 §3.4).
    fn encode(&self, header: &Header, claims: &ParticipantClaims) -> Result<String, ProviderError> {
        let failed = |e: &dyn std::fmt::Display| ProviderError::Token(e.to_string());
        let header = serde_json::to_vec(header).map_err(|e| failed(&e))?;
        let claims = serde_json::to_vec(claims).map_err(|e| failed(&e))?;
        let mut token = String::with_capacity(64 + (header.len() + claims.len()) * 4 / 3 + 128);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = self
            .key
            .sign(&self.rng, token.as_bytes())
            .map_err(|e| failed(&e))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ivs::keys::generate_key_pair;
    use jsonwebtoken::{DecodingKey, Validation};
    use time::OffsetDateTime;

    /// A fresh key pair and a signer with it.
    fn signer() -> (crate::ivs::keys::KeyPair, TokenSigner) {
        let pair = generate_key_pair();
        let signer = TokenSigner::new(
            &pair.private_key_pem,
            "arn:aws:ivs:us-east-1:000000000000:public-key/k1".into(),
            "wss://global.events.live-video.net".into(),
            "https://local.whip.example".into(),
        )
        .unwrap();
        (pair, signer)
    }

    #[test]
    fn a_token_verifies_with_the_public_key_and_carries_ivs_claims() {
        let (pair, signer) = signer();
        let now = OffsetDateTime::now_utc();
        let token = signer
            .sign(&TokenRequest {
                stage_arn: "arn:aws:ivs:us-east-1:000000000000:stage/abcDEF123456".into(),
                user_id: "viewer-001".into(),
                capabilities: vec![Capability::Subscribe],
                duration_seconds: 3600,
                attributes: BTreeMap::from([("level".into(), "VIP".into())]),
                issued_at: now,
            })
            .unwrap();
        let header = jsonwebtoken::decode_header(&token.token).unwrap();
        assert_eq!(header.alg, Algorithm::ES384);
        assert_eq!(header.kid.as_deref(), Some(signer.kid()));
        let key = DecodingKey::from_ec_pem(pair.public_key_pem.as_bytes()).unwrap();
        let claims = jsonwebtoken::decode::<ParticipantClaims>(
            &token.token,
            &key,
            &Validation::new(Algorithm::ES384),
        )
        .unwrap()
        .claims;
        assert_eq!(claims.jti, token.participant_id);
        assert_eq!(claims.topic, "abcDEF123456");
        assert_eq!(claims.exp - claims.iat, 3600);
        assert!(claims.capabilities.allow_subscribe && !claims.capabilities.allow_publish);
        assert_eq!(claims.version, "1.0");

        let other = generate_key_pair();
        let wrong = DecodingKey::from_ec_pem(other.public_key_pem.as_bytes()).unwrap();
        assert!(
            jsonwebtoken::decode::<ParticipantClaims>(
                &token.token,
                &wrong,
                &Validation::new(Algorithm::ES384)
            )
            .is_err()
        );
    }

    #[test]
    fn a_reserved_token_carries_the_reserved_participant_and_expiry() {
        let (pair, signer) = signer();
        let request = TokenRequest {
            stage_arn: "arn:aws:ivs:us-east-1:000000000000:stage/abcDEF123456".into(),
            user_id: "viewer-002".into(),
            capabilities: vec![Capability::Subscribe],
            duration_seconds: 3600,
            attributes: BTreeMap::new(),
            issued_at: OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
        };
        let reserved = signer.reserve(&request).unwrap();
        let other = signer.reserve(&request).unwrap();
        assert_ne!(reserved.participant_id, other.participant_id);
        assert_eq!(reserved.participant_id.len(), 12);
        assert_eq!(reserved.expires_at.unix_timestamp(), 1_800_003_600);

        let token = signer.sign_reserved(&request, &reserved).unwrap();
        assert_eq!(token.participant_id, reserved.participant_id);
        assert_eq!(token.expires_at, reserved.expires_at);
        let key = DecodingKey::from_ec_pem(pair.public_key_pem.as_bytes()).unwrap();
        let mut validation = Validation::new(Algorithm::ES384);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<ParticipantClaims>(&token.token, &key, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims.jti, reserved.participant_id);
        assert_eq!(claims.exp, reserved.expires_at.unix_timestamp());
    }
}
