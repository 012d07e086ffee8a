//! Validation and defaults of job definitions, as data tables.

use super::*;

fn ctx<'a>() -> ValidationContext<'a> {
    ValidationContext {
        tool: "mytool",
        check_image: &|image| match image {
            "python3.11" | "bookworm" => Ok(()),
            other => Err(format!("No such image '{other}'")),
        },
        schedule_actual: &|schedule, _, _| match schedule {
            "@daily" => Ok("17 3 * * *".to_owned()),
            "bad" => Err("Unable to parse cron expression \"bad\"".to_owned()),
            other => Ok(other.to_owned()),
        },
        max_job_memory: 4 << 30,
        max_job_cpu: 1000,
    }
}

fn input(name: &str) -> JobInput {
    JobInput {
        name: name.to_owned(),
        imagename: Some("python3.11".to_owned()),
        cmd: Some("./run.sh".to_owned()),
        ..JobInput::default()
    }
}

#[test]
fn a_minimal_job_gets_the_originals_defaults() {
    let spec = resolve(&input("myjob"), &ctx()).unwrap();
    assert_eq!(spec.kind, JobKind::OneOff);
    assert_eq!((spec.memory.as_str(), spec.cpu.as_str()), ("512Mi", "500m"));
    assert_eq!(spec.mount, Mount::All);
    assert!(spec.filelog);
    assert_eq!(
        spec.filelog_stdout.as_deref(),
        Some("/data/project/mytool/myjob.out")
    );
    assert_eq!(
        spec.filelog_stderr.as_deref(),
        Some("/data/project/mytool/myjob.err")
    );
    assert_eq!(spec.emails, Emails::None);
    assert_eq!(spec.retry, 0);
}

#[test]
fn explicit_defaults_and_home_relative_paths_resolve_to_the_same_job() {
    let plain = resolve(&input("myjob"), &ctx()).unwrap();
    let explicit = resolve(
        &JobInput {
            memory: Some("512Mi".to_owned()),
            cpu: Some("500m".to_owned()),
            mount: Some("all".to_owned()),
            filelog: Some(true),
            emails: Some("none".to_owned()),
            retry: Some(0),
            continuous: Some(false),
            ..input("myjob")
        },
        &ctx(),
    )
    .unwrap();
    assert_eq!(plain, explicit);
    let absolute = resolve(
        &JobInput {
            filelog_stdout: Some("/data/project/mytool/x.out".to_owned()),
            ..input("j")
        },
        &ctx(),
    )
    .unwrap();
    let relative = resolve(
        &JobInput {
            filelog_stdout: Some("x.out".to_owned()),
            ..input("j")
        },
        &ctx(),
    )
    .unwrap();
    assert_eq!(absolute, relative);
}

#[test]
fn each_kind_keeps_only_its_own_settings() {
    let scheduled = resolve(
        &JobInput {
            schedule: Some("@daily".to_owned()),
            timeout: Some(300),
            ..input("cron1")
        },
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        scheduled.kind,
        JobKind::Scheduled {
            schedule: "@daily".to_owned(),
            schedule_actual: "17 3 * * *".to_owned(),
            timeout: Some(300)
        }
    );
    let continuous = resolve(
        &JobInput {
            continuous: Some(true),
            port: Some(8000),
            health_check: Some(HealthCheckInput {
                kind: Some("http".to_owned()),
                path: Some("/healthz".to_owned()),
                script: None,
            }),
            ..input("web")
        },
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        continuous.kind,
        JobKind::Continuous {
            replicas: 1,
            port: Some(8000),
            health_check: Some(HealthCheck::Http {
                path: "/healthz".to_owned()
            }),
            publish: false,
        }
    );
}

#[test]
fn every_rule_is_refused_with_a_message_that_names_it() {
    let http_check = Some(HealthCheckInput {
        kind: Some("http".to_owned()),
        path: Some("/h".to_owned()),
        script: None,
    });
    let cases: Vec<(JobInput, &str)> = vec![
        (input("Bad_Name"), INVALID_JOB_NAME),
        (input(&"a".repeat(53)), INVALID_JOB_NAME),
        (input("-a"), INVALID_JOB_NAME),
        (
            JobInput {
                imagename: Some("nope".to_owned()),
                ..input("j")
            },
            "No such image 'nope'",
        ),
        (
            JobInput {
                cmd: None,
                ..input("j")
            },
            "A command is required",
        ),
        (
            JobInput {
                continuous: Some(true),
                schedule: Some("@daily".to_owned()),
                ..input("j")
            },
            "Only one of 'continuous' and 'schedule'",
        ),
        (
            JobInput {
                retry: Some(6),
                ..input("j")
            },
            "retry must be between 0 and 5, got 6",
        ),
        (
            JobInput {
                emails: Some("sometimes".to_owned()),
                ..input("j")
            },
            "emails must be one of",
        ),
        (
            JobInput {
                mount: Some("none".to_owned()),
                ..input("j")
            },
            "Mount type none is only supported for build service images",
        ),
        (
            JobInput {
                mount: Some("some".to_owned()),
                ..input("j")
            },
            "mount must be 'all' or 'none'",
        ),
        (
            JobInput {
                filelog: Some(false),
                filelog_stdout: Some("x".to_owned()),
                ..input("j")
            },
            "requires --filelog",
        ),
        (
            JobInput {
                memory: Some("lots".to_owned()),
                ..input("j")
            },
            "invalid memory quantity 'lots'",
        ),
        (
            JobInput {
                memory: Some("8Gi".to_owned()),
                ..input("j")
            },
            "over the per-job limit of 4.0Gi",
        ),
        (
            JobInput {
                cpu: Some("2".to_owned()),
                ..input("j")
            },
            "over the per-job limit of 1.0",
        ),
        (
            JobInput {
                cpu: Some("fast".to_owned()),
                ..input("j")
            },
            "invalid cpu quantity",
        ),
        (
            JobInput {
                port: Some(8000),
                ..input("j")
            },
            "--port is only valid for continuous jobs",
        ),
        (
            JobInput {
                replicas: Some(2),
                ..input("j")
            },
            "--replicas is only valid for continuous jobs",
        ),
        (
            JobInput {
                timeout: Some(10),
                ..input("j")
            },
            "--timeout is only valid for scheduled jobs",
        ),
        (
            JobInput {
                health_check: http_check.clone(),
                ..input("j")
            },
            "Health checks are only supported for continuous jobs.",
        ),
        (
            JobInput {
                continuous: Some(true),
                health_check: http_check,
                ..input("j")
            },
            "Port must be set for HTTP health checks",
        ),
        (
            JobInput {
                continuous: Some(true),
                port: Some(70000),
                ..input("j")
            },
            "port must be between 1 and 65535",
        ),
        (
            JobInput {
                schedule: Some("bad".to_owned()),
                ..input("j")
            },
            "Unable to parse cron expression \"bad\"",
        ),
    ];
    for (case, expected) in cases {
        let err = resolve(&case, &ctx()).unwrap_err();
        assert!(
            err.0.contains(expected),
            "{case:?}: {err} should contain {expected:?}"
        );
    }
}

#[test]
fn job_names_follow_rfc_1123_up_to_52_characters() {
    for good in ["a", "my-job", "a.b", "x1", &"a".repeat(52)] {
        assert!(validate_job_name(good).is_ok(), "{good}");
    }
    for bad in ["", "A", "a_b", "a.", ".a", "a..b", "a-", "é"] {
        assert!(validate_job_name(bad).is_err(), "{bad}");
    }
}
