//! What the strict parser refuses comes through the library as an error that names the path.

use std::fs;

use luo_user::{ContentError, Error, ParseError, StateFile, Watcher};
use tempfile::TempDir;

/// Reads a state file holding `content` and returns the error and the path.
fn read_error(content: &[u8]) -> (Error, String) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state");
    fs::write(&path, content).unwrap();
    let err = StateFile::open(&path).unwrap().state().unwrap_err();
    (err, path.to_string_lossy().into_owned())
}

fn parse_error(err: &Error) -> Option<&ParseError> {
    match err {
        Error::Content { source, .. } => source.as_parse_error(),
        _ => None,
    }
}

#[test]
fn garbage_is_an_unknown_state_named_with_the_path() {
    let (err, path) = read_error(b"\x00garbage\xff\n");
    assert!(
        matches!(parse_error(&err), Some(ParseError::UnknownState(_))),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&path), "{message}");
    assert!(
        message.contains("unknown state '\\x00garbage\\xff'"),
        "{message}"
    );
}

#[test]
fn an_empty_file_is_reported_as_empty_with_the_path() {
    let (err, path) = read_error(b"");
    assert_eq!(parse_error(&err), Some(&ParseError::Empty));
    assert!(err.to_string().contains(&path), "{err}");
}

#[test]
fn an_unknown_word_is_quoted_with_the_path() {
    let (err, path) = read_error(b"hibernating\n");
    let message = err.to_string();
    assert!(message.contains("unknown state 'hibernating'"), "{message}");
    assert!(message.contains(&path), "{message}");
}

#[test]
fn a_word_without_its_newline_is_refused() {
    let (err, _) = read_error(b"normal");
    assert!(
        matches!(parse_error(&err), Some(ParseError::MissingNewline(_))),
        "{err}"
    );
}

#[test]
fn a_long_content_is_quoted_cut() {
    let (err, _) = read_error(&[b'x'; 200]);
    assert!(err.to_string().contains("xxx..."), "{err}");
}

#[test]
fn a_watcher_on_garbage_fails_to_start_with_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("state");
    fs::write(&path, "garbage\n").unwrap();
    let err = Watcher::open(&path)
        .map(|w: Watcher| w.current())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Content {
                source: ContentError::Abi(_),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn a_missing_file_says_it_does_not_exist() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("absent");
    let err = StateFile::open(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
}

#[test]
fn a_directory_cannot_be_read_as_a_state() {
    let dir = TempDir::new().unwrap();
    let err = StateFile::open(dir.path()).unwrap().state().unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&*dir.path().to_string_lossy()),
        "{message}"
    );
    assert!(message.contains("not a directory"), "{message}");
}
