//! The persistent node key: the node's peer id must survive restarts, or bootnode
//! addresses (`/p2p/<peer id>`) held by other nodes stop matching.

use std::{
    fs,
    io::{self, Write},
    path::Path,
};

use alloy_primitives::hex;
use libp2p::identity::{Keypair, ed25519};

use crate::error::{NetworkError, NetworkResult};

/// Loads the ed25519 key from `path`, or creates it (mode 0600) if the file does not exist.
///
/// The file holds the 32-byte secret as 64 hex digits (a trailing newline is allowed).
/// Anything else is an error naming the file: replacing it would silently change our identity.
pub fn load_or_create_key(path: &Path) -> NetworkResult<Keypair> {
    let err = |reason: String| NetworkError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    match fs::read(path) {
        Ok(contents) => decode_key(&contents).map_err(err),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(path).map_err(err),
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

fn decode_key(contents: &[u8]) -> Result<Keypair, String> {
    let text = std::str::from_utf8(contents).map_err(|_| "not UTF-8 text".to_string())?;
    let text = text.trim_end_matches(['\n', '\r']);
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hex digits (an ed25519 secret), found {} characters",
            text.len()
        ));
    }
    let mut secret = hex::decode(text).map_err(|e| format!("not hex: {e}"))?;
    let secret = ed25519::SecretKey::try_from_bytes(&mut secret)
        .map_err(|e| format!("not an ed25519 secret key: {e}"))?;
    Ok(ed25519::Keypair::from(secret).into())
}

fn create_key(path: &Path) -> Result<Keypair, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create its directory: {e}"))?;
    }
    let keypair = ed25519::Keypair::generate();
    let text = format!("{}\n", hex::encode(keypair.secret().as_ref()));

    let mut options = fs::OpenOptions::new();
    // create_new: never overwrite a key that appeared since we looked.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create: {e}"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write: {e}"))?;
    tracing::info!(target: "infera::net", path = %path.display(), "created a new node key");
    Ok(keypair.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_persists_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.key");
        let first = load_or_create_key(&path).unwrap();
        let second = load_or_create_key(&path).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key file must be private");
        }
    }

    #[test]
    fn corrupt_key_is_an_error_naming_the_file_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        for contents in [&b"not a key"[..], &[0xff; 64][..], &[b'z'; 64][..], b""] {
            let path = dir.path().join("node.key");
            fs::write(&path, contents).unwrap();
            let err = load_or_create_key(&path).unwrap_err();
            assert!(matches!(err, NetworkError::KeyFile { .. }), "{err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert_eq!(
                fs::read(&path).unwrap(),
                contents,
                "the corrupt file must not be replaced"
            );
        }
    }
}
