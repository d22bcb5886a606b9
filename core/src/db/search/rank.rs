//! The search query and the ranking of candidates: plain text logic, no database.
//!
//! The database only narrows the videos down to candidates that share a three-letter sequence with the
//! query; this module decides which of them match and in what order, identically on both engines. A
//! query is split into words (runs of letters and digits, lowercased); each word is compared with the
//! words of a video's title, channel (title and slug) and description: an exact word scores highest,
//! then a word the query word begins (search as you type), then a word one or two typos away
//! (Damerau–Levenshtein, optimal string alignment: a transposition is one typo), then a prefix a typo
//! away. A video must match at least half of the query's words; its score is the sum of each word's
//! best match, weighted by field (title over channel over description). Ties go to the newest video.
//! Nothing here may depend on the engine, the locale or a clock: the same input ranks the same.

use std::cmp::Reverse;

/// The longest query accepted, in characters after trimming.
pub const MAX_QUERY_CHARS: usize = 100;

/// Query words shorter than this match exactly or as a prefix only: one typo in a three-letter word
/// is a different word more often than not.
const ONE_TYPO_FROM_CHARS: usize = 4;
/// Query words at least this long may be two typos away.
const TWO_TYPOS_FROM_CHARS: usize = 7;

/// Points for how well one query word matches one word of a video (0 = no match).
const EXACT: u32 = 100;
const PREFIX: u32 = 90;
const ONE_TYPO: u32 = 80;
const PREFIX_ONE_TYPO: u32 = 70;
const TWO_TYPOS: u32 = 60;
const PREFIX_TWO_TYPOS: u32 = 50;

/// Field weights, in tenths: a match in the title counts fully, in the channel 0.8, in the description 0.5.
const TITLE_WEIGHT: u32 = 10;
const CHANNEL_WEIGHT: u32 = 8;
const DESCRIPTION_WEIGHT: u32 = 5;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_QUERY_CHARS} characters long")]
    TooLong,
}

/// A parsed search query: its distinct words, lowercased, in the order typed. Punctuation and every
/// other character that is not a letter or digit only separates words, so nothing a user types can
/// reach a query language (FTS5, LIKE, regular expressions) as syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<QueryWord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct QueryWord {
    text: String,
    chars: Vec<char>,
    letters: u64,
    /// How many typos this word may contain.
    typos: usize,
}

impl QueryWord {
    fn new(text: &str) -> QueryWord {
        let chars: Vec<char> = text.chars().collect();
        // Words with a digit must be exact: "2024" is not "2025".
        let typos = if chars.iter().any(|c| c.is_numeric()) {
            0
        } else if chars.len() >= TWO_TYPOS_FROM_CHARS {
            2
        } else if chars.len() >= ONE_TYPO_FROM_CHARS {
            1
        } else {
            0
        };
        QueryWord { text: text.to_string(), letters: letters(text), chars, typos }
    }
}

/// A 64-bit summary of which characters occur in `word` (each sets bit `code point % 64`), for a
/// cheap first "too different" test.
fn letters(word: &str) -> u64 {
    word.chars().fold(0, |set, c| set | 1 << (u32::from(c) % 64))
}

/// Runs of letters and digits in `lowercase` text.
fn split_words(lowercase: &str) -> impl Iterator<Item = &str> {
    lowercase.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty())
}

impl SearchQuery {
    /// Trims `raw` and splits it into words. A query with no letters or digits (`"*^:()%_'`) is valid
    /// and matches nothing.
    pub fn parse(raw: &str) -> Result<SearchQuery, QueryError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(QueryError::Empty);
        }
        if trimmed.chars().count() > MAX_QUERY_CHARS {
            return Err(QueryError::TooLong);
        }
        let lowercase = trimmed.to_lowercase();
        let mut words: Vec<QueryWord> = Vec::new();
        for word in split_words(&lowercase) {
            if !words.iter().any(|w| w.text == word) {
                words.push(QueryWord::new(word));
            }
        }
        Ok(SearchQuery { words })
    }

    /// The query's words, lowercased.
    pub fn words(&self) -> impl Iterator<Item = &str> + '_ {
        self.words.iter().map(|w| w.text.as_str())
    }

    /// Whether the query has no word at all (it then matches nothing).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The distinct three-character sequences of the query's words of three or more characters, in
    /// order: a video that can match the query by [`score`] usually contains one of them (the
    /// candidates the database is asked for). Each is letters and digits only.
    pub fn trigrams(&self) -> Vec<String> {
        let mut grams: Vec<String> = Vec::new();
        for word in &self.words {
            for window in word.chars.windows(3) {
                let gram: String = window.iter().collect();
                if !grams.contains(&gram) {
                    grams.push(gram);
                }
            }
        }
        grams
    }
}

/// What of a video is searched.
#[derive(Clone, Copy, Debug)]
pub struct Document<'a> {
    /// Ties are broken by id, largest (newest) first.
    pub id: &'a str,
    pub title: &'a str,
    pub channel_title: &'a str,
    pub channel_slug: &'a str,
    pub description: &'a str,
}

/// How well `doc` matches `query`: `None` when fewer than half of the query's words (rounded up)
/// match anything; otherwise the sum over the query's words of their best weighted match (higher is
/// better; an exact title match of every word scores `1000 × words`).
pub fn score(query: &SearchQuery, doc: &Document<'_>) -> Option<u32> {
    if query.words.is_empty() {
        return None;
    }
    let fields = [
        (doc.title, TITLE_WEIGHT),
        (doc.channel_title, CHANNEL_WEIGHT),
        (doc.channel_slug, CHANNEL_WEIGHT),
        (doc.description, DESCRIPTION_WEIGHT),
    ];
    // The best weighted points of each query word so far.
    let mut best = vec![0; query.words.len()];
    let mut chars = Vec::new();
    for (text, weight) in fields {
        // Nothing in this field can raise any word's best: skip the field.
        if best.iter().all(|&b| b >= EXACT * weight) {
            continue;
        }
        let lowercase = text.to_lowercase();
        for word in split_words(&lowercase) {
            let mut video_word = VideoWord { text: word, letters: None, chars: &mut chars };
            for (query_word, best) in query.words.iter().zip(best.iter_mut()) {
                if *best < EXACT * weight {
                    *best = (*best).max(word_match(query_word, &mut video_word) * weight);
                }
            }
        }
    }
    let matched = best.iter().filter(|&&b| b > 0).count();
    (matched * 2 >= query.words.len()).then(|| best.iter().sum())
}

/// Orders `items` by [`score`] (best first, then newest id first), drops those that do not match,
/// and keeps at most `limit`.
pub fn rank<T>(query: &SearchQuery, items: Vec<T>, document: impl Fn(&T) -> Document<'_>, limit: usize) -> Vec<T> {
    let mut scored: Vec<(u32, T)> = items.into_iter().filter_map(|item| score(query, &document(&item)).map(|s| (s, item))).collect();
    // The id is unique, so this order is total and the result does not depend on the input order.
    scored.sort_by(|(a_score, a), (b_score, b)| {
        (Reverse(*a_score), Reverse(document(a).id)).cmp(&(Reverse(*b_score), Reverse(document(b).id)))
    });
    scored.into_iter().take(limit).map(|(_, item)| item).collect()
}

/// One word of a video, lowercased, with what is worked out about it only when a query word needs it.
struct VideoWord<'a, 'b> {
    text: &'a str,
    letters: Option<u64>,
    /// Filled with the word's characters when a distance is computed.
    chars: &'b mut Vec<char>,
}

/// Points for one query word against one word of a video.
fn word_match(query: &QueryWord, word: &mut VideoWord<'_, '_>) -> u32 {
    if query.text == word.text {
        return EXACT;
    }
    // A one-letter prefix would match a fraction of the alphabet's words; it must be a whole word.
    if query.chars.len() >= 2 && word.text.starts_with(&query.text) {
        return PREFIX;
    }
    let max = query.typos;
    // Bytes bound characters from above: a word too short in bytes is too short in characters.
    if max == 0 || word.text.len() + max < query.chars.len() {
        return 0;
    }
    // Each distinct character of the query missing from the word costs at least one edit; this turns
    // most pairs away before a distance is computed. (Characters sharing a bit only make the count
    // smaller, so the test never turns away a pair within reach.)
    let word_letters = *word.letters.get_or_insert_with(|| letters(word.text));
    if (query.letters & !word_letters).count_ones() as usize > max {
        return 0;
    }
    word.chars.clear();
    word.chars.extend(word.text.chars());
    // Distances of 0 were the exact and prefix cases above; above `max` is no match.
    match typo_distances(&query.chars, word.chars, max) {
        (whole, _) if whole <= max => {
            if whole <= 1 {
                ONE_TYPO
            } else {
                TWO_TYPOS
            }
        }
        (_, prefix) if prefix <= max => {
            if prefix <= 1 {
                PREFIX_ONE_TYPO
            } else {
                PREFIX_TWO_TYPOS
            }
        }
        _ => 0,
    }
}

/// The optimal-string-alignment distance from `query` to `word`, and to the closest prefix of `word`;
/// each is capped at `max + 1` (meaning "more than `max`"), which lets the computation stop early.
fn typo_distances(query: &[char], word: &[char], max: usize) -> (usize, usize) {
    let over = max + 1;
    // A prefix longer than the query plus `max` insertions cannot be within `max`; nor can the whole
    // word if it is that long.
    let columns = word.len().min(query.len() + max);
    let target = &word[..columns];
    let mut before_previous = vec![0; columns + 1];
    let mut previous: Vec<usize> = (0..=columns).collect();
    let mut current = vec![0; columns + 1];
    for i in 1..=query.len() {
        current[0] = i;
        let mut row_min = i;
        for j in 1..=columns {
            let substitution = previous[j - 1] + usize::from(query[i - 1] != target[j - 1]);
            let mut distance = substitution.min(previous[j] + 1).min(current[j - 1] + 1);
            if i > 1 && j > 1 && query[i - 1] == target[j - 2] && query[i - 2] == target[j - 1] {
                distance = distance.min(before_previous[j - 2] + 1);
            }
            current[j] = distance;
            row_min = row_min.min(distance);
        }
        // No cell of a later row can be smaller than this row's minimum.
        if row_min > max {
            return (over, over);
        }
        std::mem::swap(&mut before_previous, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let whole = if columns == word.len() { previous[columns].min(over) } else { over };
    let prefix = previous.iter().copied().min().unwrap_or(over).min(over);
    (whole, prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(q: &str) -> SearchQuery {
        SearchQuery::parse(q).expect("valid query")
    }

    fn doc<'a>(id: &'a str, title: &'a str, channel: &'a str, description: &'a str) -> Document<'a> {
        Document { id, title, channel_title: channel, channel_slug: "", description }
    }

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    fn points(query_word: &str, video_word: &str) -> u32 {
        word_match(&QueryWord::new(query_word), &mut VideoWord { text: video_word, letters: None, chars: &mut Vec::new() })
    }

    fn distances(q: &str, w: &str) -> (usize, usize) {
        typo_distances(&chars(q), &chars(w), 2)
    }

    #[test]
    fn queries_are_trimmed_lowercased_split_and_bounded() {
        assert_eq!(query("  Cooking, with KEERTI! cooking ").words().collect::<Vec<_>>(), ["cooking", "with", "keerti"]);
        assert_eq!(SearchQuery::parse(""), Err(QueryError::Empty));
        assert_eq!(SearchQuery::parse(" \t\n "), Err(QueryError::Empty));
        assert!(SearchQuery::parse(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        assert_eq!(SearchQuery::parse(&"é".repeat(MAX_QUERY_CHARS + 1)), Err(QueryError::TooLong));
        // Counted in characters, not bytes, and after trimming.
        assert!(SearchQuery::parse(&format!("  {}  ", "é".repeat(MAX_QUERY_CHARS))).is_ok());
    }

    #[test]
    fn query_syntax_characters_only_separate_words() {
        let q = query(r#""*^:()%_' keerti" OR "x*" NEAR(a b) \ %_"#);
        assert_eq!(q.words().collect::<Vec<_>>(), ["keerti", "or", "x", "near", "a", "b"]);
        assert!(q.trigrams().iter().all(|g| g.chars().count() == 3 && g.chars().all(char::is_alphanumeric)), "{:?}", q.trigrams());
        let nothing = query(r#""*^:()%_'"#);
        assert!(nothing.is_empty());
        assert!(nothing.trigrams().is_empty());
        assert_eq!(score(&nothing, &doc("1", "anything at all", "", "")), None);
    }

    #[test]
    fn trigrams_are_distinct_and_only_from_long_enough_words() {
        assert_eq!(query("keetri tv").trigrams(), ["kee", "eet", "etr", "tri"]);
        assert_eq!(query("aaaa aaa").trigrams(), ["aaa"]);
        assert!(query("tv f1 a").trigrams().is_empty());
        assert_eq!(query("Çay").trigrams(), ["çay"]);
    }

    #[test]
    fn distances_count_transpositions_as_one_typo() {
        assert_eq!(distances("keetri", "keerti"), (1, 1));
        assert_eq!(distances("cookng", "cooking"), (1, 1));
        assert_eq!(distances("kooknig", "cooking"), (2, 2));
        assert_eq!(distances("cooking", "cooking"), (0, 0));
        // A prefix within reach, the whole word not.
        assert_eq!(distances("cookn", "cookingshow"), (3, 1));
        assert_eq!(distances("keerti", "xyzxyz"), (3, 3));
        assert_eq!(distances("ab", "ba"), (1, 1));
        // Capped, however far apart.
        assert_eq!(typo_distances(&chars("abcdefghij"), &chars("zyxwvutsrq"), 1), (2, 2));
    }

    #[test]
    fn typo_budget_grows_with_the_word() {
        assert_eq!(points("cat", "car"), 0, "three letters: no typos");
        assert_eq!(points("rust", "rest"), ONE_TYPO);
        assert_eq!(points("rust", "cast"), 0, "two typos in four letters is another word");
        assert_eq!(points("keetri", "keerti"), ONE_TYPO);
        assert_eq!(points("kertri", "keerti"), 0, "two typos need seven letters");
        assert_eq!(points("kooknig", "cooking"), TWO_TYPOS);
        assert_eq!(points("2024", "2025"), 0, "numbers are exact");
        assert_eq!(points("cookin", "cooking"), PREFIX);
        assert_eq!(points("kookin", "cookingshow"), PREFIX_ONE_TYPO);
        assert_eq!(points("c", "cooking"), 0, "one letter is never a prefix");
        assert_eq!(points("c", "c"), EXACT);
        assert_eq!(points("co", "cooking"), PREFIX);
    }

    #[test]
    fn typos_find_the_video() {
        let cooking = doc("1", "Cooking with Keerti", "Keerti's Kitchen", "Pasta from scratch");
        for q in ["keerti", "keetri", "cookng", "KEETRI", "kooknig", "cooking keerti", "past"] {
            assert!(score(&query(q), &cooking).is_some(), "{q} finds it");
        }
        for q in ["baking", "zzz", "gardening tips", "x"] {
            assert_eq!(score(&query(q), &cooking), None, "{q} does not");
        }
    }

    #[test]
    fn at_least_half_of_the_words_must_match() {
        let d = doc("1", "Cooking with Keerti", "", "");
        assert!(score(&query("cooking pasta"), &d).is_some(), "one of two");
        assert!(score(&query("cooking pasta tonight"), &d).is_none(), "one of three");
        assert!(score(&query("cooking keerti tonight"), &d).is_some(), "two of three");
    }

    #[test]
    fn exact_beats_prefix_beats_typo_and_title_beats_channel_beats_description() {
        let q = query("keerti");
        let exact = doc("1", "Keerti", "", "");
        let prefix = doc("2", "Keertiland", "", "");
        let typo = doc("3", "Keetri", "", "");
        let channel = doc("4", "Dinner", "Keerti", "");
        let slug = Document { channel_slug: "keerti-cooks", ..doc("5", "Dinner", "", "") };
        let description = doc("6", "Dinner", "", "with Keerti");
        let s = |d: &Document<'_>| score(&q, d).expect("matches");
        assert!(s(&exact) > s(&prefix) && s(&prefix) > s(&typo), "exact > prefix > typo in the same field");
        assert!(s(&exact) > s(&channel) && s(&channel) > s(&description));
        assert_eq!(s(&channel), s(&slug), "the slug counts as the channel");
        assert!(s(&typo) > s(&description), "a typo in the title beats an exact word in the description");
    }

    #[test]
    fn more_matching_words_rank_higher() {
        let q = query("cooking with keerti");
        let all = doc("1", "Cooking with Keerti", "", "");
        let two = doc("2", "Cooking with Bob", "", "");
        assert!(score(&q, &all) > score(&q, &two));
    }

    #[test]
    fn rank_orders_by_score_then_newest_and_limits() {
        let q = query("keerti");
        let items = vec![
            doc("0001", "Keerti", "", ""),
            doc("0004", "Keetri", "", ""),
            doc("0003", "Keerti", "", ""),
            doc("0002", "unrelated", "", ""),
            doc("0005", "Dinner", "", "keerti"),
        ];
        let ids = |ranked: Vec<Document<'static>>| ranked.into_iter().map(|d| d.id).collect::<Vec<_>>();
        assert_eq!(ids(rank(&q, items.clone(), |d| *d, 10)), ["0003", "0001", "0004", "0005"]);
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(ids(rank(&q, reversed, |d| *d, 10)), ["0003", "0001", "0004", "0005"], "input order does not matter");
        assert_eq!(ids(rank(&q, items, |d| *d, 2)), ["0003", "0001"]);
    }

    /// Every word within two edits of `word` over `alphabet` (plus transpositions).
    fn edits(word: &str, alphabet: &[char]) -> Vec<String> {
        let chars = chars(word);
        let mut out = Vec::new();
        for i in 0..=chars.len() {
            for &c in alphabet {
                let mut inserted = chars.clone();
                inserted.insert(i, c);
                out.push(inserted.iter().collect());
                if i < chars.len() {
                    let mut substituted = chars.clone();
                    substituted[i] = c;
                    out.push(substituted.iter().collect());
                }
            }
            if i < chars.len() {
                let mut deleted = chars.clone();
                deleted.remove(i);
                out.push(deleted.iter().collect());
            }
            if i + 1 < chars.len() {
                let mut swapped = chars.clone();
                swapped.swap(i, i + 1);
                out.push(swapped.iter().collect());
            }
        }
        out
    }

    #[test]
    fn the_letter_filter_never_turns_away_a_word_within_reach() {
        // 'a' and '¡' (and 'b' and '¢') share a bit in the letter summary.
        let alphabet = ['a', 'b', 'k', '¡', '¢', 'é'];
        let mut checked = 0;
        for word in ["keerti", "cooking", "ab¡¢", "kéka", "banana", "abab"] {
            let once = edits(word, &alphabet);
            let twice: Vec<String> = once.iter().flat_map(|w| edits(w, &alphabet)).collect();
            for typed in once.iter().chain(&twice) {
                let max = QueryWord::new(typed).typos;
                let (whole, prefix) = typo_distances(&chars(typed), &chars(word), max);
                if max > 0 && (whole <= max || prefix <= max) {
                    assert!(points(typed, word) > 0, "{typed:?} for {word:?}: ({whole}, {prefix}) within {max}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn long_inputs_stay_cheap() {
        // A query word of the maximum length against a long word that shares nothing stops early.
        let q = query(&"q".repeat(MAX_QUERY_CHARS));
        let long = "z".repeat(5000);
        let d = doc("1", "t", "c", &long);
        assert_eq!(score(&q, &d), None);
    }
}
