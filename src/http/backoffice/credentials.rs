//! The operator's credentials (`website` + `key`, in the JSON body of every back-office action):
//! checked here, once, for every action.

use poem_openapi::Object;

use crate::app::AppState;
use crate::domain::operator::OperatorScope;
use crate::http::api_error::ApiError;
use crate::http::field::Checked;

/// A back-office request: it carries the operator's `website` and `key`.
pub trait OperatorCredentials {
    /// The `website` and `key` fields, as sent.
    fn credentials(&self) -> (&Checked<String>, &Checked<String>);
}

/// Implements [`OperatorCredentials`] for requests with `website` and `key` fields.
macro_rules! operator_credentials {
    ($($request:ty),* $(,)?) => {
        $(impl $crate::http::backoffice::credentials::OperatorCredentials for $request {
            fn credentials(
                &self,
            ) -> (&$crate::http::field::Checked<String>, &$crate::http::field::Checked<String>) {
                (&self.website, &self.key)
            }
        })*
    };
}
pub(crate) use operator_credentials;

/// An authenticated operator.
#[derive(Clone, Debug)]
pub struct Operator {
    /// The operator's `website`.
    pub website: String,
    /// What it may manage.
    pub scope: OperatorScope,
}

impl Operator {
    /// The operator whose credentials `request` carries: 400 `VALIDATION_ERROR` when `website`
    /// or `key` is missing, 401 `UNAUTHORIZED` when unknown or wrong.
    pub async fn authenticate(
        state: &AppState,
        request: &impl OperatorCredentials,
    ) -> Result<Self, ApiError> {
        let (website, key) = request.credentials();
        let website = website.clone().get("website")?;
        let key = key.clone().get("key")?;
        // Every operator's website is printable ASCII (`onair operator create`); anything else is
        // unknown without asking the database (which could not even compare a NUL).
        if !website.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::unauthorized("unknown website or wrong key"));
        }
        match crate::records::operators::verify(&state.db, &website, &key).await? {
            Some(scope) => Ok(Self { website, scope }),
            None => Err(ApiError::unauthorized("unknown website or wrong key")),
        }
    }
}

/// Operator credentials only (`ListGifts`).
#[derive(Object, Debug)]
pub struct CredentialsRequest {
    /// The operator's `website` (`onair operator create --website`).
    pub website: Checked<String>,
    /// The operator's key, printed once by `onair operator create`.
    pub key: Checked<String>,
}

operator_credentials!(CredentialsRequest);
