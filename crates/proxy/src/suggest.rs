//! "Did you mean": the existing tool names nearest to a requested one.

/// At most this many suggestions are shown.
pub const MAX_SUGGESTIONS: usize = 5;

/// The names in `names` within a small edit distance of `wanted`, nearest first (ties by
/// name), at most [`MAX_SUGGESTIONS`].
///
/// The distance allowed grows with the name: 1 up to 4 characters, then a third of the
/// length, at most 4; a name that contains `wanted` (or is contained in it) also counts,
/// at the distance of their length difference.
pub fn suggestions<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.chars().count() / 3).clamp(1, 4);
    let mut found: Vec<(usize, &str)> = names
        .into_iter()
        .filter(|name| *name != wanted)
        .filter_map(|name| {
            let distance = levenshtein(wanted, name);
            if distance <= limit {
                return Some((distance, name));
            }
            let contains = wanted.len() >= 3 && (name.contains(wanted) || wanted.contains(name));
            contains.then(|| (wanted.len().abs_diff(name.len()), name))
        })
        .collect();
    found.sort_unstable();
    found
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// The Levenshtein distance of two strings, by characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_insertions_deletions_and_substitutions() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }

    #[test]
    fn near_names_come_first_and_far_ones_not_at_all() {
        let names = [
            "mytool",
            "mytools",
            "my-tool",
            "mytool-dev",
            "other",
            "xtool",
        ];
        assert_eq!(
            suggestions("mytoll", names),
            vec!["mytool", "my-tool", "mytools"]
        );
        assert_eq!(
            suggestions("mytool", names),
            vec!["my-tool", "mytools", "xtool", "mytool-dev"]
        );
        assert!(suggestions("zzzzzzzz", names).is_empty());
    }

    #[test]
    fn at_most_a_handful_are_suggested() {
        let names: Vec<String> = (0..20).map(|i| format!("tool{i}")).collect();
        let found = suggestions("tool", names.iter().map(String::as_str));
        assert_eq!(found.len(), MAX_SUGGESTIONS);
    }
}
