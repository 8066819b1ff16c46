//! `files`: blobs a feature keeps in its guild (transcripts, copied
//! attachments), under the plan's quota of bytes, files and bytes per file.
//! Comes with the `storage` grant. Also the signed links that serve a file to
//! whoever holds one until it expires ([`FileLinks`]), which the API checks.
//!
//! A link is `{public_url}/files/{payload}.{mac}`: the payload is the scope,
//! the name and the expiry, base64url; the MAC is HMAC-SHA256 over it with a
//! host secret kept in the database (the same for every process). A link
//! cannot be widened to another file, feature or guild, or lengthened,
//! without the secret.

use super::{Cap, Effect};
use crate::discord::Discord;
use crate::store::{FileInfo, FileQuota, Scope, Store, StoreError};
use crate::wit::townes::feature::files::{FileInfo as WitFileInfo, Host};
use crate::wit::{Capability, Error};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use tokio::sync::OnceCell;
use townes_limits::files as limits;

/// The host secret that signs file links.
const LINK_SECRET: &str = "file-links";

/// What `files` needs: where files go, whose they are, the plan's quota, the
/// link signer, and Discord (whose attachments `copy-attachment` fetches).
pub struct FilesCtx {
    pub store: Store,
    pub scope: Scope,
    pub quota: FileQuota,
    pub links: Arc<FileLinks>,
    pub discord: Arc<dyn Discord>,
}

/// Signs and checks file links. One per process; the key is read from the
/// database on first use.
pub struct FileLinks {
    store: Store,
    public_url: String,
    key: OnceCell<Vec<u8>>,
}

/// What a valid link grants: one file of one scope, until `expires`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkedFile {
    pub scope: Scope,
    pub name: String,
    pub expires: chrono::DateTime<chrono::Utc>,
}

impl FileLinks {
    /// Links start with `public_url` (where the API is reached from outside).
    pub fn new(store: Store, public_url: &str) -> Self {
        FileLinks {
            store,
            public_url: public_url.trim_end_matches('/').to_string(),
            key: OnceCell::new(),
        }
    }

    /// Where links start (the API's public address).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The signature of `text`, base64url: what other signed links (export
    /// downloads) carry, made with the same host secret. Callers keep their
    /// texts apart from file links' payloads by a prefix of their own.
    pub async fn tag(&self, text: &str) -> Result<String, StoreError> {
        let mut mac = self.mac().await?;
        mac.update(text.as_bytes());
        Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Whether `tag` is [`FileLinks::tag`] of `text` (compared in constant time).
    pub async fn verify_tag(&self, text: &str, tag: &str) -> Result<bool, StoreError> {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return Ok(false);
        };
        let mut mac = self.mac().await?;
        mac.update(text.as_bytes());
        Ok(mac.verify_slice(&tag).is_ok())
    }

    async fn mac(&self) -> Result<Hmac<Sha256>, StoreError> {
        let key = self
            .key
            .get_or_try_init(|| self.store.host_secret(LINK_SECRET))
            .await?;
        Ok(Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length"))
    }

    /// A link to `name` of `scope` that works until `expires`.
    pub async fn sign(
        &self,
        scope: &Scope,
        name: &str,
        expires: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, StoreError> {
        let payload = URL_SAFE_NO_PAD.encode(format!(
            "{}\n{}\n{}\n{name}",
            scope.guild_id,
            scope.feature_id,
            expires.timestamp()
        ));
        let tag = self.tag(&payload).await?;
        Ok(format!("{}/files/{payload}.{tag}", self.public_url))
    }

    /// The file a link's token (what follows `/files/`) grants, if its MAC is
    /// right and it has not expired. Every failure is the same `None`: a
    /// prober learns nothing about which part was wrong.
    pub async fn check(&self, token: &str) -> Result<Option<LinkedFile>, StoreError> {
        let Some((payload, tag)) = token.split_once('.') else {
            return Ok(None);
        };
        if !self.verify_tag(payload, tag).await? {
            return Ok(None);
        }
        let decoded = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some(decoded) = decoded else {
            return Ok(None);
        };
        let mut parts = decoded.splitn(4, '\n');
        let (Some(guild), Some(feature), Some(expires), Some(name)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(guild_id), Some(expires)) = (
            guild.parse(),
            expires
                .parse()
                .ok()
                .and_then(|s| chrono::DateTime::from_timestamp(s, 0)),
        ) else {
            return Ok(None);
        };
        if expires <= chrono::Utc::now() {
            return Ok(None);
        }
        Ok(Some(LinkedFile {
            scope: Scope::new(guild_id, feature),
            name: name.to_string(),
            expires,
        }))
    }
}

fn wit_info(info: FileInfo) -> WitFileInfo {
    WitFileInfo {
        name: info.name,
        content_type: info.content_type,
        size: info.size,
        created_at: info.created_at.to_rfc3339(),
    }
}

impl Host for Cap<'_, FilesCtx> {
    async fn put(
        &mut self,
        name: String,
        content_type: String,
        data: Vec<u8>,
    ) -> Result<WitFileInfo, Error> {
        const CALL: &str = "files.put";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match limits::check_name(&name)
            .and_then(|()| limits::check_content_type(&content_type))
        {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .store
                .put_file(&self.ctx.scope, &name, &content_type, &data, self.ctx.quota)
                .await
                .map(wit_info)
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |info| {
            Some(Effect::FileStored {
                name: info.name.clone(),
                bytes: info.size,
            })
        })
    }

    async fn get(&mut self, name: String) -> Result<Option<Vec<u8>>, Error> {
        const CALL: &str = "files.get";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match limits::check_name(&name) {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .store
                .file(&self.ctx.scope, &name)
                .await
                .map(|file| file.map(|(_, data)| data))
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |_| None)
    }

    async fn delete(&mut self, name: String) -> Result<bool, Error> {
        const CALL: &str = "files.delete";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = match limits::check_name(&name) {
            Err(e) => Err(e.into()),
            Ok(()) => self
                .ctx
                .store
                .delete_file(&self.ctx.scope, &name)
                .await
                .map_err(Error::from),
        };
        self.calls.finish(CALL, result, |&existed| {
            existed.then(|| Effect::FileDeleted { name: name.clone() })
        })
    }

    async fn list_prefix(&mut self, prefix: String, limit: u32) -> Result<Vec<WitFileInfo>, Error> {
        const CALL: &str = "files.list-prefix";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = if !(1..=limits::MAX_LIST).contains(&limit) {
            Err(Error::InvalidArgument(format!(
                "files.list-prefix: limit {limit}; list 1 to {} at a time",
                limits::MAX_LIST
            )))
        } else {
            self.ctx
                .store
                .files(&self.ctx.scope, &prefix, limit)
                .await
                .map(|files| files.into_iter().map(wit_info).collect())
                .map_err(Error::from)
        };
        self.calls.finish(CALL, result, |_| None)
    }

    async fn link(&mut self, name: String, expires_in_seconds: u32) -> Result<String, Error> {
        const CALL: &str = "files.link";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = async {
            limits::check_name(&name)?;
            limits::check_link_seconds(expires_in_seconds)?;
            if self
                .ctx
                .store
                .file_info(&self.ctx.scope, &name)
                .await?
                .is_none()
            {
                return Err(Error::NotFound(format!("file `{name}`")));
            }
            let expires = chrono::Utc::now() + chrono::Duration::seconds(expires_in_seconds.into());
            Ok(self.ctx.links.sign(&self.ctx.scope, &name, expires).await?)
        }
        .await;
        self.calls.finish(CALL, result, |_| None)
    }

    async fn copy_attachment(
        &mut self,
        name: String,
        channel_id: u64,
        message_id: u64,
        attachment_id: u64,
    ) -> Result<WitFileInfo, Error> {
        const CALL: &str = "files.copy-attachment";
        self.calls.begin(Capability::Storage, CALL)?;
        let result = async {
            // Reading an attachment is reading the channel: the same grants
            // as `history.read` with content.
            for needed in [Capability::Messages, Capability::MessageContent] {
                self.calls.grant.check(needed)?;
            }
            self.calls
                .grant
                .check_channel(Capability::Messages, channel_id)?;
            limits::check_name(&name)?;
            let (attachment, data) = self
                .ctx
                .discord
                .attachment(
                    self.ctx.scope.guild_id,
                    channel_id,
                    message_id,
                    attachment_id,
                    self.ctx.quota.max_file_bytes,
                )
                .await?;
            let content_type = attachment
                .content_type
                .filter(|t| limits::check_content_type(t).is_ok())
                .unwrap_or_else(|| "application/octet-stream".into());
            let info = self
                .ctx
                .store
                .put_file(&self.ctx.scope, &name, &content_type, &data, self.ctx.quota)
                .await?;
            Ok(wit_info(info))
        }
        .await;
        self.calls.finish(CALL, result, |info| {
            Some(Effect::FileStored {
                name: info.name.clone(),
                bytes: info.size,
            })
        })
    }
}
