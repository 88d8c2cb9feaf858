//! The pages' scripts, styles and icons, compiled into the binary and served under names that
//! carry a digest of their content (`/assets/app.3f9a0c1d2e.js`), so a browser may keep each one
//! for a year: a changed file has a new name. Nothing is fetched from anywhere else.

use std::sync::LazyLock;

use axum::{
    extract::Path,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

/// One served file.
#[derive(Debug)]
pub struct Asset {
    /// The name pages refer to, e.g. `app.js`.
    pub name: &'static str,
    /// The name it is served under, with its digest.
    pub served_as: String,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/icon.svg"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, content_type, body)| {
            let digest = hex::encode(&Sha256::digest(body)[..5]);
            let served_as = match name.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
                None => format!("{name}.{digest}"),
            };
            Asset {
                name,
                served_as,
                content_type,
                body,
            }
        })
        .collect()
});

/// The URL of an asset by its plain name; an unknown name is a programming error caught by the
/// page tests, and yields a URL that answers 404.
pub fn url(name: &str) -> String {
    ASSETS.iter().find(|a| a.name == name).map_or_else(
        || format!("/assets/{name}"),
        |a| format!("/assets/{}", a.served_as),
    )
}

/// Every asset (for tests and for the page-weight benchmark).
pub fn all() -> &'static [Asset] {
    &ASSETS
}

/// `GET /assets/{file}`: the file under its digest name, cacheable for a year.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.served_as == file) else {
        return crate::ApiError::not_found("asset_not_found", "no such asset").into_response();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_names_carry_a_digest_of_the_content() {
        for asset in all() {
            let (stem, ext) = asset.name.rsplit_once('.').unwrap();
            assert!(asset.served_as.starts_with(&format!("{stem}.")));
            assert!(asset.served_as.ends_with(&format!(".{ext}")));
            assert_eq!(asset.served_as.len(), asset.name.len() + 11);
            assert_eq!(url(asset.name), format!("/assets/{}", asset.served_as));
        }
    }
}
