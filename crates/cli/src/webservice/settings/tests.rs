//! Unit tests of the template and manifest.

use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Template, TemplateError> {
    Template::parse(Path::new("/home/t/service.template"), text)
}

#[test]
fn a_template_sets_every_allowed_key() {
    let template = parse(
        "backend: kubernetes\ncpu: 500m\nmem: 1Gi\nreplicas: 2\ntype: python3.11\n\
         extra_args:\n  - --port\n  - 8000\nbuildservice-image: tool-x/tool-x:latest\nmount: none\n",
    )
    .unwrap();
    assert_eq!(
        template,
        Template {
            backend: Some("kubernetes".to_owned()),
            cpu: Some("500m".to_owned()),
            mem: Some("1Gi".to_owned()),
            replicas: Some(2),
            wstype: Some("python3.11".to_owned()),
            extra_args: Some(vec!["--port".to_owned(), "8000".to_owned()]),
            buildservice_image: Some("tool-x/tool-x:latest".to_owned()),
            mount: Some("none".to_owned()),
        }
    );
    assert_eq!(parse("").unwrap(), Template::default());
}

#[test]
fn unknown_keys_are_named_with_the_allowed_ones() {
    let err = parse("type: generic\nport: 80\nmemory: 1Gi\n").unwrap_err();
    assert_eq!(
        err.0,
        "Your template file (/home/t/service.template) contains unknown keys: port, memory\n  \
         allowed keys: backend, cpu, mem, replicas, type, extra_args, buildservice-image, mount"
    );
}

#[test]
fn bad_values_are_errors_that_name_the_key() {
    for (text, message) in [
        (
            "replicas: 0",
            "replicas: 0 is not a valid number of replicas (a whole number, at least 1)",
        ),
        (
            "replicas: two",
            "replicas: two is not a valid number of replicas (a whole number, at least 1)",
        ),
        ("mem: lots", "mem: lots is not a valid Kubernetes quantity"),
        ("cpu: 0.5", "cpu: 0.5 is not a valid Kubernetes quantity"),
        (
            "backend: grid",
            "backend: invalid choice: 'grid' (choose from 'gridengine', 'kubernetes')",
        ),
        (
            "mount: some",
            "mount: invalid choice: 'some' (choose from 'all', 'none')",
        ),
        ("- a list", "it must be a YAML mapping of settings"),
    ] {
        assert_eq!(
            parse(text).unwrap_err().0,
            format!("Your template file (/home/t/service.template) contains errors:\n  {message}"),
            "{text}"
        );
    }
}

#[test]
fn quantities_are_checked_as_the_original_does() {
    for good in ["512Mi", "1Gi", "500m", "1", "2k"] {
        assert_eq!(kube_quant(good), Ok(good.to_owned()));
    }
    for bad in ["", "Mi", "1.5Gi", "1Xi", "-1"] {
        assert!(kube_quant(bad).is_err(), "{bad}");
    }
}

#[test]
fn the_manifest_records_a_start_and_forgets_it_on_stop_keeping_other_keys() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("service.manifest"), "mine: kept\n").unwrap();
    let mut manifest = Manifest::load(home.path()).unwrap();
    manifest.set("backend", Value::String("kubernetes".to_owned()));
    manifest.record_start(&Started {
        wstype: "generic",
        buildservice_image: None,
        replicas: 2,
        cpu: None,
        memory: Some("1Gi"),
        extra_args: &["python3 -m http.server $PORT".to_owned()],
    });
    let now = time::macros::datetime!(2026-11-29 22:48:27 UTC);
    manifest.save(now).unwrap();
    let text = std::fs::read_to_string(home.path().join("service.manifest")).unwrap();
    assert_eq!(
        text,
        "# This file is used by Toolforge infrastructure.\n\
         # Please do not edit manually at this time.\n\
         # Sun Nov 29 22:48:27 2026\n\
         backend: kubernetes\n\
         memory: 1Gi\n\
         mine: kept\n\
         replicas: 2\n\
         version: 4\n\
         web: generic\n\
         web::extra_args:\n\
         - python3 -m http.server $PORT\n"
    );
    let mut again = Manifest::load(home.path()).unwrap();
    assert_eq!(again.get("web").as_deref(), Some("generic"));
    assert_eq!(again.replicas(), Some(2));
    assert!(again.record_stop());
    again.save(now).unwrap();
    let text = std::fs::read_to_string(home.path().join("service.manifest")).unwrap();
    assert!(text.ends_with("\nmine: kept\nversion: 4\n"), "{text}");
    let mut stopped = Manifest::load(home.path()).unwrap();
    assert!(!stopped.record_stop(), "nothing left to forget");
}
