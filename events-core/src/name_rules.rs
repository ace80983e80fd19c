//! The naming rules of SPEC §2 as plain functions.
//!
//! This file is shared, word for word, by `events-core` (run-time parsing of
//! names that arrive over the wire) and `events-derive` (compile-time checks
//! of `#[event(...)]`), so the two can never disagree. It depends on nothing
//! but `std`.

use std::fmt;

/// The longest event name EventBridge accepts as a `DetailType`.
pub const MAX_NAME_LEN: usize = 128;

/// The `message_type` part of every domain event name.
pub const MESSAGE_TYPE_EVENT: &str = "event";

/// Irregular past forms accepted as the last word of an `action`.
///
/// Regular past forms (ending in `ed`) need no entry. The list holds past
/// participles and simple past forms of common irregular verbs, and their
/// `re`/`un`/`over`/`with` compounds.
pub const IRREGULAR_PAST: &[&str] = &[
    "arisen",
    "ate",
    "awoken",
    "beaten",
    "became",
    "become",
    "began",
    "begun",
    "beheld",
    "bent",
    "bet",
    "bid",
    "bitten",
    "bled",
    "blew",
    "blown",
    "born",
    "borne",
    "bought",
    "bound",
    "bred",
    "broadcast",
    "broke",
    "broken",
    "brought",
    "built",
    "burnt",
    "burst",
    "came",
    "cast",
    "caught",
    "chose",
    "chosen",
    "clung",
    "come",
    "cost",
    "crept",
    "cut",
    "dealt",
    "did",
    "done",
    "drawn",
    "drew",
    "driven",
    "drove",
    "drunk",
    "dug",
    "dwelt",
    "eaten",
    "fallen",
    "fed",
    "fell",
    "felt",
    "fit",
    "fled",
    "flew",
    "flown",
    "flung",
    "forbidden",
    "forecast",
    "foreseen",
    "forgiven",
    "forgot",
    "forgotten",
    "fought",
    "found",
    "froze",
    "frozen",
    "gave",
    "given",
    "gone",
    "got",
    "gotten",
    "grew",
    "ground",
    "grown",
    "heard",
    "held",
    "hid",
    "hidden",
    "hit",
    "hung",
    "hurt",
    "input",
    "kept",
    "knelt",
    "knew",
    "known",
    "laid",
    "lain",
    "leapt",
    "led",
    "left",
    "lent",
    "let",
    "lit",
    "lost",
    "made",
    "meant",
    "met",
    "mislaid",
    "misled",
    "mistaken",
    "outdone",
    "outgrown",
    "output",
    "overcome",
    "overdone",
    "overheard",
    "overridden",
    "overtaken",
    "overthrown",
    "paid",
    "prepaid",
    "proven",
    "put",
    "quit",
    "ran",
    "rang",
    "read",
    "rebuilt",
    "redone",
    "remade",
    "rent",
    "repaid",
    "reread",
    "resent",
    "reset",
    "resold",
    "retold",
    "rewritten",
    "rid",
    "ridden",
    "risen",
    "rode",
    "rose",
    "run",
    "rung",
    "said",
    "sang",
    "sank",
    "sat",
    "saw",
    "seen",
    "sent",
    "set",
    "sewn",
    "shaken",
    "shed",
    "shone",
    "shot",
    "shown",
    "shrunk",
    "shut",
    "slain",
    "slept",
    "slid",
    "slung",
    "sold",
    "sought",
    "sown",
    "spat",
    "sped",
    "spent",
    "spilt",
    "split",
    "spoke",
    "spoken",
    "spread",
    "sprung",
    "spun",
    "stole",
    "stolen",
    "stood",
    "strewn",
    "striven",
    "struck",
    "strung",
    "stuck",
    "stung",
    "sung",
    "sunk",
    "swept",
    "swore",
    "sworn",
    "swum",
    "swung",
    "taken",
    "taught",
    "thought",
    "threw",
    "thrown",
    "told",
    "took",
    "tore",
    "torn",
    "understood",
    "undertaken",
    "undone",
    "upheld",
    "upset",
    "went",
    "wept",
    "withdrawn",
    "withheld",
    "withstood",
    "woke",
    "woken",
    "won",
    "wore",
    "worn",
    "wound",
    "written",
    "wrote",
    "wrung",
];

/// Why one part of an event name breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartError {
    /// The part is empty.
    Empty,
    /// The first character is not a lowercase ASCII letter.
    BadStart(char),
    /// A character outside `[a-z0-9_]`.
    BadChar(char),
    /// The action's last word is not in the past tense.
    NotPastTense(String),
    /// A command's action whose last word is in the past tense.
    PastTense(String),
}

impl fmt::Display for PartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartError::Empty => f.write_str("it is empty"),
            PartError::BadStart(c) => write!(f, "it starts with `{c}`, not a lowercase letter"),
            PartError::BadChar(c) => write!(f, "`{c}` is not allowed (only `a-z`, `0-9` and `_`)"),
            PartError::NotPastTense(word) => write!(
                f,
                "`{word}` is not in the past tense (the last word must end in `ed` \
                 or be an irregular past form such as `sent`, `paid`, `built`)"
            ),
            PartError::PastTense(word) => write!(
                f,
                "`{word}` is in the past tense; a command's action is an infinitive \
                 (what to do: `send`, `create`, `cancel`)"
            ),
        }
    }
}

/// Checks a `company`, `service` or `resource` part: `[a-z][a-z0-9_]*`.
pub fn check_segment(part: &str) -> Result<(), PartError> {
    let mut chars = part.chars();
    match chars.next() {
        None => return Err(PartError::Empty),
        Some(c) if !c.is_ascii_lowercase() => return Err(PartError::BadStart(c)),
        Some(_) => {}
    }
    match chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')) {
        Some(c) => Err(PartError::BadChar(c)),
        None => Ok(()),
    }
}

/// Checks an `action`: a segment whose last `_`-separated word is past tense.
pub fn check_action(action: &str) -> Result<(), PartError> {
    check_segment(action)?;
    let last = action.rsplit('_').next().unwrap_or(action);
    if is_past_tense(last) {
        Ok(())
    } else {
        Err(PartError::NotPastTense(last.to_owned()))
    }
}

/// Whether one lowercase word counts as past tense under SPEC §2.
pub fn is_past_tense(word: &str) -> bool {
    (word.len() > 2 && word.ends_with("ed")) || IRREGULAR_PAST.binary_search(&word).is_ok()
}

/// A lowercase `[a-z0-9_]*` spelling close to `part`, for error hints
/// (`CompanyName` → `company_name`, `my-api` → `my_api`). It may still start
/// with a digit or be empty; callers then show a generic example instead.
pub fn suggest_segment(part: &str) -> String {
    let mut out = String::with_capacity(part.len() + 1);
    let mut prev_lower = false;
    for c in part.trim().chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
            prev_lower = true;
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
            prev_lower = false;
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// Past forms of common irregular verbs, for error hints (`send` → `sent`).
const IRREGULAR_VERBS: &[(&str, &str)] = &[
    ("begin", "begun"),
    ("bind", "bound"),
    ("break", "broken"),
    ("bring", "brought"),
    ("build", "built"),
    ("buy", "bought"),
    ("catch", "caught"),
    ("choose", "chosen"),
    ("cut", "cut"),
    ("deal", "dealt"),
    ("do", "done"),
    ("draw", "drawn"),
    ("drive", "driven"),
    ("eat", "eaten"),
    ("fall", "fallen"),
    ("feed", "fed"),
    ("find", "found"),
    ("forget", "forgotten"),
    ("freeze", "frozen"),
    ("get", "gotten"),
    ("give", "given"),
    ("go", "gone"),
    ("grow", "grown"),
    ("hide", "hidden"),
    ("hold", "held"),
    ("keep", "kept"),
    ("know", "known"),
    ("lead", "led"),
    ("leave", "left"),
    ("lend", "lent"),
    ("lose", "lost"),
    ("make", "made"),
    ("mean", "meant"),
    ("meet", "met"),
    ("pay", "paid"),
    ("put", "put"),
    ("read", "read"),
    ("rebuild", "rebuilt"),
    ("repay", "repaid"),
    ("resend", "resent"),
    ("reset", "reset"),
    ("rewrite", "rewritten"),
    ("ride", "ridden"),
    ("rise", "risen"),
    ("run", "run"),
    ("say", "said"),
    ("see", "seen"),
    ("sell", "sold"),
    ("send", "sent"),
    ("set", "set"),
    ("show", "shown"),
    ("shut", "shut"),
    ("sleep", "slept"),
    ("speak", "spoken"),
    ("spend", "spent"),
    ("split", "split"),
    ("stand", "stood"),
    ("steal", "stolen"),
    ("take", "taken"),
    ("teach", "taught"),
    ("tell", "told"),
    ("think", "thought"),
    ("throw", "thrown"),
    ("undo", "undone"),
    ("wake", "woken"),
    ("win", "won"),
    ("withdraw", "withdrawn"),
    ("write", "written"),
];

/// The base form of a verb in the present third person (`sends` → `send`,
/// `pushes` → `push`, `applies` → `apply`), or `None` when `word` is not
/// of that form (`process`, `focus`).
fn third_person_base(word: &str) -> Option<String> {
    if word.len() < 3 || word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return None;
    }
    if let Some(stem) = word.strip_suffix("ies") {
        return Some(format!("{stem}y"));
    }
    for ending in ["sses", "ches", "shes", "xes", "zes", "oes"] {
        if word.ends_with(ending) {
            return word.strip_suffix("es").map(str::to_owned);
        }
    }
    word.strip_suffix('s').map(str::to_owned)
}

/// The past form of a verb in its base form (`send` → `sent`,
/// `create` → `created`, `apply` → `applied`).
fn past_of(verb: &str) -> String {
    if let Some((_, past)) = IRREGULAR_VERBS.iter().find(|(base, _)| *base == verb) {
        (*past).to_owned()
    } else if verb.ends_with('e') {
        format!("{verb}d")
    } else if let Some(stem) = verb
        .strip_suffix('y')
        .filter(|s| !s.ends_with(['a', 'e', 'i', 'o', 'u']))
    {
        format!("{stem}ied")
    } else {
        format!("{verb}ed")
    }
}

/// A past-tense spelling close to `action`, for error hints
/// (`create` → `created`, `email_send` → `email_sent`, `apply` → `applied`,
/// `sends` → `sent`).
pub fn suggest_action(action: &str) -> String {
    let base = suggest_segment(action);
    let (head, last) = match base.rfind('_') {
        Some(i) => (&base[..=i], &base[i + 1..]),
        None => ("", base.as_str()),
    };
    if last.is_empty() || is_past_tense(last) {
        return base;
    }
    let verb = third_person_base(last).unwrap_or_else(|| last.to_owned());
    format!("{head}{}", past_of(&verb))
}

/// Builds the full name from its parts.
pub fn full_name(
    company: &str,
    service: &str,
    version: u32,
    resource: &str,
    action: &str,
) -> String {
    format!("{company}.{service}.{version}.{MESSAGE_TYPE_EVENT}.{resource}.{action}")
}

/// The `message_type` part of every command name.
pub const MESSAGE_TYPE_COMMAND: &str = "command";

/// Infinitives that the past-tense rule would take for past forms (they
/// end in `ed`, or their past form is spelt the same): a command may use them.
const INFINITIVE_TOO: &[&str] = &[
    "become",
    "bet",
    "bid",
    "bleed",
    "breed",
    "broadcast",
    "burst",
    "cast",
    "come",
    "cost",
    "cut",
    "embed",
    "exceed",
    "feed",
    "forecast",
    "heed",
    "hit",
    "hurt",
    "let",
    "need",
    "overcome",
    "proceed",
    "put",
    "quit",
    "read",
    "rerun",
    "reset",
    "run",
    "seed",
    "set",
    "shed",
    "shred",
    "shut",
    "speed",
    "split",
    "spread",
    "succeed",
    "upset",
    "wed",
    "weed",
];

/// Checks a command's `action`: a segment whose last `_`-separated word is
/// an infinitive, i.e. not in the past tense (`send`, `create`, `reset`).
pub fn check_command_action(action: &str) -> Result<(), PartError> {
    check_segment(action)?;
    let last = action.rsplit('_').next().unwrap_or(action);
    if is_past_tense(last) && !INFINITIVE_TOO.contains(&last) {
        Err(PartError::PastTense(last.to_owned()))
    } else {
        Ok(())
    }
}

/// An infinitive close to `action`, for a command's error hints
/// (`sent` → `send`, `created` → `create`, `email_sent` → `email_send`,
/// `applied` → `apply`, `cancelled` → `cancel`). Empty when no guess is good.
pub fn suggest_infinitive(action: &str) -> String {
    let base = suggest_segment(action);
    let (head, last) = match base.rfind('_') {
        Some(i) => (&base[..=i], &base[i + 1..]),
        None => ("", base.as_str()),
    };
    if last.is_empty() || !is_past_tense(last) || INFINITIVE_TOO.contains(&last) {
        return base;
    }
    match infinitive_of(last) {
        Some(verb) => format!("{head}{verb}"),
        None => String::new(),
    }
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// The base form of a past form (`sent` → `send`, `stopped` → `stop`,
/// `created` → `create`): a guess, for hints only.
fn infinitive_of(past: &str) -> Option<String> {
    if let Some((verb, _)) = IRREGULAR_VERBS.iter().find(|(_, p)| *p == past) {
        return Some((*verb).to_owned());
    }
    if let Some(stem) = past.strip_suffix("ied").filter(|s| !s.is_empty()) {
        return Some(format!("{stem}y"));
    }
    let stem = past.strip_suffix("ed")?;
    let b = stem.as_bytes();
    let n = b.len();
    if n < 2 {
        return None;
    }
    let (last, before) = (b[n - 1], b[n - 2]);
    // A doubled final consonant: `stopped`, `planned`, `cancelled`.
    if last == before && matches!(last, b'b' | b'g' | b'm' | b'n' | b'p' | b'r' | b't') {
        return Some(stem[..n - 1].to_owned());
    }
    if last == b'l' && before == b'l' && n >= 3 && b[n - 3] == b'e' {
        return Some(stem[..n - 1].to_owned());
    }
    // Stems whose verb ends in a silent `e`: `placed`, `archived`,
    // `queued`, `created`, `deleted`, `changed`, `closed`, `enabled`,
    // `renamed`, `noted`, `stored`.
    let takes_e = matches!(last, b'c' | b'v' | b'z' | b'u')
        || (matches!(last, b't') && matches!(before, b'a' | b'e' | b'u'))
        || (last == b'g' && matches!(before, b'n' | b'r'))
        || (last == b's' && is_vowel(before) && before != b'u')
        || (last == b'l' && (!is_vowel(before) || before == b'u') && before != b'l')
        || (n >= 3
            && matches!(last, b'k' | b'm' | b'n' | b'p' | b'r' | b's' | b't' | b'd')
            && matches!(before, b'a' | b'i' | b'o' | b'u')
            && !is_vowel(b[n - 3])
            && !(before == b'i' && matches!(last, b't' | b'd' | b'n')));
    Some(if takes_e {
        format!("{stem}e")
    } else {
        stem.to_owned()
    })
}

/// Builds the full name of a message of `message_type` (`event` or
/// `command`) from its parts.
pub fn full_message_name(
    company: &str,
    service: &str,
    version: u32,
    message_type: &str,
    resource: &str,
    action: &str,
) -> String {
    format!("{company}.{service}.{version}.{message_type}.{resource}.{action}")
}
