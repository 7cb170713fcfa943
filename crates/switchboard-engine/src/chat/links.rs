//! Linking a chat identity to a principal. `link` in chat makes a one-time
//! code and sends it to the chat user privately; the user proves they are
//! that principal by confirming the code where they are already signed in
//! (`switchboard link CODE`, or the API). Codes are single-use, expire, and
//! only their SHA-256 is stored. Every request, link, failed attempt and
//! unlink is audited.

use switchboard_core::audit::AuditEvent;
use switchboard_core::chat::{ChatIdentity, ChatOutlet, Inbound, Reply};
use switchboard_core::{Origin, Principal, Timestamp};

use super::{Speaker, micros};
use crate::{Engine, EngineError};

/// Letters and digits that cannot be mistaken for each other.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";

/// A fresh link code, as shown to the user: `ABCD-EFGH`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkCode(String);

impl LinkCode {
    fn generate() -> Result<Self, EngineError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map_err(|e| EngineError::Internal(format!("no randomness for a link code: {e}")))?;
        let chars: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        Ok(Self(format!("{}-{}", &chars[..4], &chars[4..])))
    }
}

/// The stored form of a code as typed: case and dashes do not matter.
fn code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    switchboard_core::token::token_hash(&normal)
}

impl Engine {
    /// `link` in chat: sends a code privately and says where to confirm it.
    pub(super) async fn chat_link(
        &self,
        inbound: &Inbound,
        speaker: &Speaker,
        outlet: &dyn ChatOutlet,
    ) -> Reply {
        if inbound.authenticated.is_some() {
            return Reply::Text {
                text: format!(
                    "You are signed in here as {}; there is nothing to link.",
                    speaker.identity.principal
                ),
            };
        }
        if !inbound.sender.is_verified() {
            return Reply::Refused {
                reason: format!(
                    "{} is not an account this chat vouches for (anyone can take a nick); sign in to your account on the chat network (SASL or NickServ), then say `link` again",
                    inbound.sender
                ),
            };
        }
        // The code is kept only once it has reached the user: a code that
        // could not be sent must not replace one they already have.
        let code = match LinkCode::generate() {
            Ok(code) => code,
            Err(e) => return super::refusal(e),
        };
        let minutes = self.chat_settings().link_code_ttl.as_secs().div_ceil(60);
        let private = Reply::Text {
            text: format!(
                "Your link code is {}. Confirm it within {minutes} minutes where you are signed in to Switchboard: `switchboard link {}`. Never share it.",
                code.0, code.0
            ),
        };
        if let Err(e) = outlet.direct(&inbound.sender, &private).await {
            return Reply::Refused {
                reason: format!("I could not send you a direct message ({e}); no code was made"),
            };
        }
        if let Err(e) = self
            .keep_link_code(&inbound.sender, &code, &speaker.origin)
            .await
        {
            return Reply::Refused {
                reason: format!("the code I sent cannot be used ({e}); say `link` again"),
            };
        }
        Reply::Text {
            text: if inbound.room.direct {
                "Code sent above.".to_owned()
            } else {
                "I sent you a link code in a direct message.".to_owned()
            },
        }
    }

    /// `unlink` in chat.
    pub(super) async fn chat_unlink(&self, inbound: &Inbound, speaker: &Speaker) -> Reply {
        if inbound.authenticated.is_some() {
            return Reply::Text {
                text: "You are signed in here with a token; there is no link to remove.".to_owned(),
            };
        }
        match self
            .unlink(
                &inbound.sender,
                &speaker.identity.principal,
                &speaker.origin,
            )
            .await
        {
            Ok(true) => Reply::Text {
                text: format!(
                    "{} is no longer linked to {}.",
                    inbound.sender, speaker.identity.principal
                ),
            },
            Ok(false) => Reply::Text {
                text: format!("{} is not linked.", inbound.sender),
            },
            Err(e) => super::refusal(e),
        }
    }

    /// Keeps a link code sent to a chat identity (replacing any earlier one).
    async fn keep_link_code(
        &self,
        identity: &ChatIdentity,
        code: &LinkCode,
        origin: &Origin,
    ) -> Result<(), EngineError> {
        let now = Timestamp::now();
        let ttl = self.chat_settings().link_code_ttl;
        let expires = Timestamp(now.micros() + micros(ttl));
        self.shared
            .store
            .create_link_code(&code_hash(&code.0), &identity.to_string(), now, expires)
            .await?;
        self.record(AuditEvent::now(
            &Principal::anonymous(),
            origin,
            "chat.link.requested",
            format!("chat:{identity}"),
            "sent",
            serde_json::json!({"expires_at": expires.to_string()}),
        ))
        .await;
        Ok(())
    }

    /// Confirms a link code for the signed-in `principal`: links the chat
    /// identity it was made for. A wrong, used or lapsed code links nothing.
    pub async fn confirm_link(
        &self,
        code: &str,
        principal: &Principal,
        origin: &Origin,
    ) -> Result<ChatIdentity, EngineError> {
        let linked = self
            .shared
            .store
            .redeem_link_code(&code_hash(code), principal, Timestamp::now())
            .await?;
        let Some(identity) = linked else {
            self.record(AuditEvent::now(
                principal,
                origin,
                "chat.link.failed",
                format!("principal:{principal}"),
                "denied",
                serde_json::json!({"reason": "unknown, used or expired code"}),
            ))
            .await;
            return Err(EngineError::Invalid(
                "that link code is unknown, already used or expired: say `link` in chat for a new one".to_owned(),
            ));
        };
        let identity = ChatIdentity::try_from(identity)
            .map_err(|e| EngineError::Internal(format!("stored link code: {e}")))?;
        self.record(AuditEvent::now(
            principal,
            origin,
            "chat.link.confirmed",
            format!("chat:{identity}"),
            "linked",
            serde_json::json!({"principal": principal}),
        ))
        .await;
        Ok(identity)
    }

    /// Removes a chat identity's link; `by` is who asked (the linked
    /// principal from chat, or an admin through the API).
    pub async fn unlink(
        &self,
        identity: &ChatIdentity,
        by: &Principal,
        origin: &Origin,
    ) -> Result<bool, EngineError> {
        let removed = self
            .shared
            .store
            .unlink_chat_identity(&identity.to_string())
            .await?;
        if removed {
            self.record(AuditEvent::now(
                by,
                origin,
                "chat.unlinked",
                format!("chat:{identity}"),
                "unlinked",
                serde_json::json!({}),
            ))
            .await;
        }
        Ok(removed)
    }

    /// The chat identities linked to a principal, with when.
    pub async fn chat_links(
        &self,
        principal: &Principal,
    ) -> Result<Vec<(String, Timestamp)>, EngineError> {
        Ok(self.shared.store.chat_links_of(principal).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_groups_of_four_unambiguous_characters() {
        let LinkCode(code) = LinkCode::generate().unwrap();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            code.chars()
                .filter(|c| *c != '-')
                .all(|c| ALPHABET.contains(&(c as u8)))
        );
        assert_ne!(LinkCode::generate().unwrap().0, code);
    }

    #[test]
    fn a_code_matches_however_it_is_typed() {
        assert_eq!(code_hash("ABCD-EFGH"), code_hash(" abcdefgh "));
        assert_ne!(code_hash("ABCD-EFGH"), code_hash("ABCD-EFGJ"));
    }
}
