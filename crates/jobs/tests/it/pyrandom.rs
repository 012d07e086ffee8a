//! `jobs::pyrandom` reproduces CPython's `random.Random`.
//!
//! The expected numbers were printed by CPython 3.11, for example
//! `python3 -c 'import random; r = random.Random("a"); print([r.getrandbits(32) for _ in range(5)])'`.

use jobs::pyrandom::{Error, Random};

#[test]
fn a_str_seed_gives_the_same_32_bit_words_as_cpython() {
    let cases: [(&str, &[u64]); 3] = [
        (
            "a",
            &[1168357962, 2173948116, 289208638, 2614490077, 2576611547],
        ),
        ("", &[4124137760, 1951988028, 2557274880]),
        (&"x".repeat(200), &[3650749297]),
    ];
    for (seed, expected) in cases {
        let mut random = Random::from_str_seed(seed);
        let actual: Vec<u64> = expected
            .iter()
            .map(|_| random.getrandbits(32).unwrap())
            .collect();
        assert_eq!(actual, expected, "seed {seed:?}");
    }
}

#[test]
fn randint_getrandbits_random_choice_and_randrange_follow_one_cpython_sequence() {
    // random.Random("tool job"): five randint(0, 59), then getrandbits(7), getrandbits(64),
    // getrandbits(40), getrandbits(0), random(), choice("abc"), randrange(10, 1000).
    let mut random = Random::from_str_seed("tool job");
    let randints: Vec<i64> = (0..5).map(|_| random.randint(0, 59).unwrap()).collect();
    assert_eq!(randints, [16, 25, 6, 51, 30]);
    assert_eq!(random.getrandbits(7), Ok(42));
    assert_eq!(random.getrandbits(64), Ok(18421984217889514514));
    assert_eq!(random.getrandbits(40), Ok(323530949803));
    assert_eq!(random.getrandbits(0), Ok(0));
    assert_eq!(random.random(), 0.666717735218652);
    assert_eq!(random.choice(&["a", "b", "c"]), Some(&"a"));
    assert_eq!(random.randrange(10, 1000), Ok(543));
}

#[test]
fn the_daily_macro_of_a_known_job_draws_cpythons_minute_and_hour() {
    let mut random = Random::from_str_seed("mytool nightly");
    assert_eq!(
        (random.randint(0, 59), random.randint(0, 23)),
        (Ok(45), Ok(17))
    );
}

#[test]
fn empty_ranges_and_over_wide_draws_are_errors_not_panics() {
    let mut random = Random::from_str_seed("a");
    assert_eq!(
        random.randrange(5, 5),
        Err(Error::EmptyRange { start: 5, stop: 5 })
    );
    assert_eq!(
        random.randint(3, 2),
        Err(Error::EmptyRange { start: 3, stop: 3 })
    );
    assert_eq!(random.getrandbits(65), Err(Error::TooManyBits { k: 65 }));
    assert_eq!(random.choice::<u8>(&[]), None);
    assert!(random.randint(i64::MIN, i64::MAX).is_err());
    assert!(random.randint(i64::MAX - 1, i64::MAX).is_ok());
}

#[test]
fn an_integer_seed_gives_the_same_words_as_cpython_whatever_its_leading_zero_bytes() {
    // random.Random(n): the first two getrandbits(32).
    let cases: [(&[u8], [u64; 2]); 5] = [
        (&[], [3626764237, 1654615998]),
        (&[0, 0, 0], [3626764237, 1654615998]),
        (&12345u32.to_be_bytes(), [1789368711, 3146859322]),
        (&(1u64 << 40 | 5).to_be_bytes(), [2166296868, 2220160828]),
        (&u64::MAX.to_be_bytes(), [93740670, 1068495656]),
    ];
    for (bytes, expected) in cases {
        let mut random = Random::from_big_endian_integer(bytes);
        let actual = [
            random.getrandbits(32).unwrap(),
            random.getrandbits(32).unwrap(),
        ];
        assert_eq!(actual, expected, "seed bytes {bytes:?}");
    }
}
