//! Request parameters checked before they reach PostgreSQL: a path parameter that cannot be read
//! answers a JSON 400 (axum's own rejection is plain text), and text that PostgreSQL cannot store
//! (a NUL character) is refused as bad input instead of failing the query.

use axum::{
    extract::{FromRequestParts, Path},
    http::request::Parts,
};
use serde::{Deserialize, de::DeserializeOwned};

use super::ApiError;

/// Path parameters; a rejection is a JSON [`ApiError`].
#[derive(Debug)]
pub(super) struct PathParam<T>(pub(super) T);

impl<T, S> FromRequestParts<S> for PathParam<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Text from a path, a query string or a body that PostgreSQL can store: no NUL character.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(super) struct Text(String);

impl Text {
    /// The text.
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub(super) fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Text {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.contains('\0') {
            return Err(format!("{value:?} contains a NUL character"));
        }
        Ok(Self(value))
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Text;

    #[test]
    fn text_refuses_nul_and_keeps_everything_else() {
        assert!(Text::try_from("a\0b".to_owned()).is_err());
        assert!(Text::try_from("\0".to_owned()).is_err());
        for ok in ["", "mainnet", "Bad Name", "ü\u{1}\u{7f}", "\u{fffd}"] {
            assert_eq!(
                Text::try_from(ok.to_owned()).map(|t| t.into_string()),
                Ok(ok.to_owned())
            );
        }
        let parsed: Result<Text, _> = serde_json::from_str("\"x\\u0000\"");
        assert!(parsed.is_err(), "a JSON \\u0000 escape is refused too");
    }
}
