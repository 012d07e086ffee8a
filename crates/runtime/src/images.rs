//! The image catalog: short names (`bookworm`, `python3.11`, `node20`) and their aliases
//! (`tf-python39`, the original's image names) mapped to a root filesystem on this machine.
//!
//! A root is either the host's own `/` (for Debian releases and language images whose runtime
//! the host has, detected when the catalog is loaded) or a root filesystem directory an
//! administrator provides.
//! Images the host cannot provide stay listed, as unavailable, so a job asking for them gets
//! a message that says why and what to do instead of "unknown image".
//!
//! The catalog is read from `<data-dir>/images.yaml` when it exists (parsed with
//! `serde_norway`), else the built-in `default-images.yaml` is used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, Result};

/// The built-in catalog: every image name and alias Toolforge has offered.
pub const DEFAULT_CATALOG: &str = include_str!("default-images.yaml");

/// Images this runtime knows.
#[derive(Debug, Clone)]
pub struct ImageCatalog {
    images: Vec<Image>,
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The short name (`python3.11`).
    pub name: String,
    /// The original's image URL, shown to clients.
    pub image_url: String,
    /// Stable or deprecated.
    pub state: ImageState,
    /// Other names that select it (`tf-python311`).
    pub aliases: Vec<String>,
    /// Whether this machine can run it.
    pub availability: Availability,
    /// How it serves a webservice of its type, when it has a webservice variant.
    pub webservice: Option<WebserviceVariant>,
}

/// The webservice variant of an image: what `toolforge webservice <image> start` runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebserviceVariant {
    /// Which kind of server.
    pub wstype: WsType,
    /// The program that serves (inside the image's root), e.g. `/usr/bin/php8.2`.
    pub server: PathBuf,
    /// Other programs the server needs (`/usr/bin/npm`).
    #[serde(default)]
    pub requires: Vec<PathBuf>,
}

/// The kinds of webservice the original offered (its `wstype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WsType {
    /// A WSGI `app` in `~/www/python/src/app.py`, with `~/www/python/venv` when present.
    Python,
    /// `~/public_html` served by PHP's built-in server.
    Php,
    /// `npm start` in `~/www/js`.
    Js,
}

impl WebserviceVariant {
    /// Why this machine cannot serve the variant from `root`, naming what is missing.
    pub fn missing(&self, root: &Path) -> Option<String> {
        std::iter::once(&self.server)
            .chain(&self.requires)
            .find(|path| !root.join(path.strip_prefix("/").unwrap_or(path)).exists())
            .map(|path| format!("{} not found", path.display()))
    }
}

/// Whether an image is still recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    /// Recommended.
    #[default]
    Stable,
    /// Still runs, but clients are told to move on.
    Deprecated,
}

impl ImageState {
    /// `"stable"` or `"deprecated"`, as the jobs API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Stable => "stable",
            ImageState::Deprecated => "deprecated",
        }
    }
}

/// Whether this machine can run an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Runs on this root filesystem (`/` for the host's own system).
    Available {
        /// The root directory.
        root: PathBuf,
    },
    /// Cannot run here.
    Unavailable {
        /// Why, in words for the user.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    images: BTreeMap<String, EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    image: String,
    #[serde(default)]
    state: ImageState,
    #[serde(default)]
    aliases: Vec<String>,
    /// `host`, or an absolute root filesystem directory; absent: not provided.
    #[serde(default)]
    root: Option<String>,
    /// Paths (inside the root) that must exist.
    #[serde(default)]
    requires: Vec<PathBuf>,
    /// A command whose output must contain a string (only for `root: host`).
    #[serde(default)]
    version: Option<VersionCheck>,
    /// The Debian major release the host must run (only for `root: host`).
    #[serde(default)]
    debian: Option<String>,
    /// The webservice variant.
    #[serde(default)]
    webservice: Option<WebserviceVariant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionCheck {
    command: Vec<String>,
    contains: String,
}

impl ImageCatalog {
    /// The built-in catalog, checked against this machine once per process (the checks run
    /// `node --version` and the like, so the first call blocks briefly).
    pub fn builtin() -> ImageCatalog {
        static BUILTIN: std::sync::OnceLock<ImageCatalog> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                // The built-in text is part of the binary and covered by a test.
                ImageCatalog::parse(DEFAULT_CATALOG, Path::new("<built-in>"))
                    .expect("the built-in image catalog parses")
            })
            .clone()
    }

    /// Reads the catalog at `path`, or the built-in one when the file does not exist.
    ///
    /// Blocking: it reads files and runs the catalog's version checks (`node --version`);
    /// call it at start-up.
    pub fn load(path: &Path) -> Result<ImageCatalog> {
        match std::fs::read_to_string(path) {
            Ok(text) => ImageCatalog::parse(&text, path),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(ImageCatalog::builtin()),
            Err(source) => Err(Error::Io {
                action: "reading the image catalog",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses catalog text (`path` only names it in errors) and checks every entry against
    /// this machine.
    pub fn parse(text: &str, path: &Path) -> Result<ImageCatalog> {
        let file: CatalogFile = serde_norway::from_str(text).map_err(|source| Error::Catalog {
            path: path.to_path_buf(),
            source,
        })?;
        let host_debian = std::fs::read_to_string("/etc/debian_version").ok();
        let images = file
            .images
            .into_iter()
            .map(|(name, entry)| {
                let availability = check(&entry, host_debian.as_deref());
                Image {
                    name,
                    image_url: entry.image,
                    state: entry.state,
                    aliases: entry.aliases,
                    availability,
                    webservice: entry.webservice,
                }
            })
            .collect();
        Ok(ImageCatalog { images })
    }

    /// Every image, sorted by name.
    pub fn images(&self) -> &[Image] {
        &self.images
    }

    /// The image a name selects: its short name, an alias, or the original's image name
    /// (`toolforge-python39-sssd-base`, with or without registry and tag).
    pub fn find(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|image| {
            image.name == name
                || image.aliases.iter().any(|alias| alias == name)
                || image.image_url == name
                || original_name(&image.image_url) == original_name(name)
        })
    }

    /// The images with a webservice variant (the webservice types besides `generic` and
    /// `buildservice`), sorted by name.
    pub fn webservice_types(&self) -> impl Iterator<Item = &Image> {
        self.images
            .iter()
            .filter(|image| image.webservice.is_some())
    }

    /// The root filesystem to run `name` on, or why it cannot run here.
    pub fn resolve(&self, name: &str) -> Result<&Path> {
        let image = self.find(name).ok_or_else(|| Error::UnknownImage {
            name: name.to_owned(),
        })?;
        match &image.availability {
            Availability::Available { root } => Ok(root),
            Availability::Unavailable { reason } => Err(Error::ImageUnavailable {
                name: image.name.clone(),
                reason: reason.clone(),
            }),
        }
    }
}

/// `toolforge-python39-sssd-base` from `docker-registry.tools.wmflabs.org/toolforge-python39-sssd-base:latest`.
fn original_name(reference: &str) -> &str {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    last.split(':').next().unwrap_or(last)
}

fn check(entry: &EntryFile, host_debian: Option<&str>) -> Availability {
    let unavailable = |reason: String| Availability::Unavailable { reason };
    let root = match entry.root.as_deref() {
        None => return unavailable("no root filesystem is configured for it".to_owned()),
        Some("host") => PathBuf::from("/"),
        Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => return unavailable(format!("its root {dir:?} is not an absolute path")),
    };
    let on_host = root == Path::new("/");
    if !on_host && !root.join("bin/sh").exists() {
        return unavailable(format!(
            "its root filesystem {} has no /bin/sh",
            root.display()
        ));
    }
    for required in &entry.requires {
        let inside = root.join(required.strip_prefix("/").unwrap_or(required));
        if !inside.exists() {
            return unavailable(format!("{} is not installed", required.display()));
        }
    }
    if on_host {
        if let Some(release) = &entry.debian {
            let host = host_debian.map(|v| v.trim().split('.').next().unwrap_or("").to_owned());
            if host.as_deref() != Some(release.as_str()) {
                return unavailable(format!("this host does not run Debian {release}"));
            }
        }
        if let Some(version) = &entry.version
            && !version_matches(version)
        {
            return unavailable(format!(
                "`{}` does not report {}",
                version.command.join(" "),
                version.contains
            ));
        }
    }
    Availability::Available { root }
}

fn version_matches(check: &VersionCheck) -> bool {
    let Some((program, args)) = check.command.split_first() else {
        return false;
    };
    std::process::Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|output| {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            text.contains(&check.contains)
        })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::Error;
    use crate::images::{Availability, ImageCatalog, ImageState};

    #[test]
    fn the_builtin_catalog_knows_every_name_toolforge_offered() {
        let catalog = ImageCatalog::builtin();
        for name in [
            "bookworm",
            "bullseye",
            "trixie",
            "tf-bullseye-std",
            "python3.9",
            "tf-python39",
            "python3.11",
            "python3.13",
            "node12",
            "node16",
            "node18",
            "node20",
            "php7.3",
            "php7.4",
            "php8.2",
            "php8.4",
            "jdk17",
            "ruby2.7",
            "golang1.11",
            "perl5.36",
            "tcl8.6",
            "mariadb",
            "mono6.8",
            "toolforge-python39-sssd-base",
            "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest",
        ] {
            assert!(catalog.find(name).is_some(), "{name} is not in the catalog");
        }
        let python = catalog.find("tf-python311").expect("alias");
        assert_eq!(python.name, "python3.11");
        assert_eq!(
            python.image_url,
            "docker-registry.tools.wmflabs.org/toolforge-python311-sssd-base:latest"
        );
        assert_eq!(
            catalog.find("node12").expect("node12").state,
            ImageState::Deprecated
        );
    }

    #[test]
    fn an_unavailable_image_is_refused_with_a_way_to_provide_it() {
        let text = "images:\n  ancient:\n    image: r/toolforge-ancient-sssd:latest\n    root: host\n    requires: [/no/such/interpreter]\n";
        let catalog = ImageCatalog::parse(text, Path::new("test.yaml")).expect("parses");
        let err = catalog.resolve("ancient").expect_err("unavailable");
        assert!(matches!(err, Error::ImageUnavailable { .. }));
        let message = err.to_string();
        assert!(
            message.contains("/no/such/interpreter is not installed"),
            "{message}"
        );
        assert!(message.contains("debootstrap"), "{message}");
        assert!(matches!(
            catalog.resolve("nope"),
            Err(Error::UnknownImage { .. })
        ));
    }

    #[test]
    fn a_root_filesystem_directory_provides_an_image() {
        let rootfs = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(rootfs.path().join("bin")).expect("mkdir");
        std::fs::write(rootfs.path().join("bin/sh"), "").expect("write");
        let text = format!(
            "images:\n  bullseye:\n    image: r/toolforge-bullseye-sssd:latest\n    aliases: [tf-bullseye-std]\n    root: {}\n",
            rootfs.path().display()
        );
        let catalog = ImageCatalog::parse(&text, Path::new("test.yaml")).expect("parses");
        assert_eq!(
            catalog.resolve("tf-bullseye-std").expect("available"),
            rootfs.path()
        );
        assert!(matches!(
            catalog.find("bullseye").expect("listed").availability,
            Availability::Available { .. }
        ));
    }

    #[test]
    fn unknown_keys_in_the_catalog_are_an_error() {
        let err = ImageCatalog::parse(
            "images:\n  x:\n    image: y\n    rooot: host\n",
            Path::new("bad.yaml"),
        );
        assert!(matches!(err, Err(Error::Catalog { .. })));
    }
}
