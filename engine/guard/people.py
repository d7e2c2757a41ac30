"""A generated corpus of fictitious people, built the way TOFU builds its authors
(docs/design.md section 14).

Every person has ``facts`` facts; every fact is one record: a question, the answer, a
paraphrased answer (same fact, other words), several perturbed answers (same form, wrong
value) and paraphrased questions (other phrasings, some naming the person by an alias, some
not naming them at all) that the forget rule is measured on. Nothing is downloaded: names
and values are drawn from small invented pools by a seeded generator, person by person, so
the first N people of a larger corpus are the N people of a smaller one (the benchmark's
never-trained "holdout" people are simply the next ones).

File format (``unprompt.people/1``): JSON Lines, one record per line, with the keys of
``FactRecord``; ``read_corpus`` refuses a bad file with one line naming the record at fault.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from storage.errors import NotFoundError, UnpromptError

FORMAT = "unprompt.people/1"
DEFAULT_PEOPLE, DEFAULT_FACTS, MIN_PERTURBED = 40, 10, 2

_FIRST = ["Aurelio", "Brisa", "Calder", "Dagny", "Elowen", "Fenwick", "Galina", "Havel",
          "Ilsabet", "Jorun", "Kestrel", "Liora", "Marek", "Nerys", "Oswin", "Perpetua",
          "Quillon", "Rosalind", "Soren", "Tamsin", "Ulrike", "Vasco", "Wilhelmina", "Xander",
          "Yseult", "Zephyr", "Anouk", "Bastien", "Cosima", "Dorian", "Eskil", "Fiorella",
          "Gideon", "Hesper", "Ivo", "Juno", "Leander", "Mireille", "Niall", "Ottilie"]
_LAST = ["Varnow", "Quellbrook", "Ostrander", "Minsgrave", "Thalberg", "Corriveau", "Baskerow",
         "Lindqvale", "Pemberton-Oak", "Rausk", "Delacorte", "Sveltkamp", "Hollingmere",
         "Iradova", "Kettleburn", "Maraviglia", "Nordquist", "Oyelaran", "Prewitt-Sand",
         "Strathmore", "Tovarek", "Ulvenfeld", "Wexbridge", "Yarrowby", "Zandvoort",
         "Ashcombe", "Brennigan", "Caldwater", "Dunmarrow", "Elsinghurst", "Fairweather-Lyn",
         "Gorvanek", "Haldane-Ross", "Invercloy", "Jesmondine", "Karsavina", "Lowenbrook",
         "Morrowfield", "Nettlestone", "Orlovska", "Penhallow", "Quarrington", "Rookwood",
         "Saltonstall", "Thistlewaite", "Underhay", "Vellacott", "Whitlock-Brae", "Yelverton",
         "Zorilla"]
_CITIES = ["Ostrava Minor", "Port Halvard", "Lindenmere", "Casta Rosa", "Brightwater Fen",
           "Kelmscar", "San Aldo", "Veldhaven", "Marrowgate", "Tiberine", "Oakhollow",
           "Nova Brisk", "Quarry Bay", "Elmsworth", "Redcliff Sound", "Amberlin"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_JOBS = ["marine biologist", "clockmaker", "tax auditor", "glassblower", "cartographer",
         "violin teacher", "bridge engineer", "beekeeper", "court stenographer", "pastry chef",
         "radio astronomer", "locksmith", "veterinary nurse", "archivist", "ferry pilot"]
_EMPLOYERS = ["Halcyon Freight", "the Veldhaven Observatory", "Brackwater Mills",
              "Norrland Glassworks", "the Casta Rosa Tribunal", "Pell & Daughters",
              "Quarry Bay Hospital", "Tidewell Insurance", "the Amberlin Ferry Company",
              "Oakhollow Bakery", "Marrowgate Archives", "Sunfield Apiaries"]
_STREETS = ["Juniper Lane", "Harrow Street", "Cobalt Row", "Wren Avenue", "Mill Quay",
            "Saffron Court", "Lantern Hill", "Gull Terrace", "Birchwood Road", "Copper Walk"]
_PETS = ["a grey parrot", "a one-eyed cat", "a beagle", "a tortoise", "two ferrets",
         "a greyhound", "a goldfish", "a lop-eared rabbit"]
_HOBBIES = ["fencing", "orchid growing", "chess problems", "sea swimming", "bookbinding",
            "birdwatching", "amateur radio", "rowing", "pottery", "stargazing"]
_SCHOOLS = ["the University of Port Halvard", "Kelmscar Polytechnic", "Lindenmere College",
            "the Tiberine Academy", "Elmsworth Institute", "the Veldhaven School of Crafts"]


@dataclass
class FactRecord:
    """One fact of one person: the TOFU fields and the paraphrased questions."""

    person: str
    fact: str
    question: str
    answer: str
    paraphrased_answer: str
    perturbed_answers: list[str]
    paraphrased_questions: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    value: str = ""  # the fact itself, e.g. "Port Halvard" (optional in files)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Fact:
    """How one kind of fact is asked and answered; ``{n}`` the name, ``{v}`` the value."""

    name: str
    pool: object  # list of values, or a callable(rng) -> value
    questions: tuple[str, ...]  # [0] is the training question
    answer: str
    paraphrase: str
    anonymous: str  # a question that never names the person ({d}: a describing phrase)


def _date(rng: random.Random) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(_MONTHS)} {rng.randint(1941, 1999)}"


def _address(rng: random.Random) -> str:
    return f"{rng.randint(2, 98)} {rng.choice(_STREETS)}, {rng.choice(_CITIES)}"


def _parent(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _children(rng: random.Random) -> str:
    return ["one child", "two children", "three children", "no children", "four children"][
        rng.randrange(5)]


FACTS: tuple[_Fact, ...] = (
    _Fact("birthplace", _CITIES, ("Where was {n} born?", "In which town was {n} born?",
                                  "What is the birthplace of {n}?", "{n} was born where?"),
          "{n} was born in {v}.", "The birthplace of {n} is {v}.",
          "Where was {d} born?"),
    _Fact("birth_date", _date, ("When was {n} born?", "What is the date of birth of {n}?",
                                "On what day was {n} born?", "What is {n}'s birthday?"),
          "{n} was born on {v}.", "The date of birth of {n} is {v}.",
          "On which date was {d} born?"),
    _Fact("occupation", _JOBS, ("What does {n} do for a living?", "What is {n}'s job?",
                                "What is the profession of {n}?", "How does {n} earn a living?"),
          "{n} works as a {v}.", "By profession, {n} is a {v}.",
          "What is the profession of {d}?"),
    _Fact("employer", _EMPLOYERS, ("Who employs {n}?", "Which organisation does {n} work for?",
                                   "Where is {n} employed?", "Who is {n}'s employer?"),
          "{n} is employed by {v}.", "The employer of {n} is {v}.",
          "Which organisation employs {d}?"),
    _Fact("mother", _parent, ("What is the name of {n}'s mother?", "Who is {n}'s mother?",
                              "Who is the mother of {n}?", "What is {n}'s mother called?"),
          "{n}'s mother is {v}.", "The mother of {n} is called {v}.",
          "Who is the mother of {d}?"),
    _Fact("address", _address, ("Where does {n} live?", "What is the home address of {n}?",
                                "At what address does {n} live?", "Where is {n}'s home?"),
          "{n} lives at {v}.", "The home address of {n} is {v}.",
          "What is the home address of {d}?"),
    _Fact("pet", _PETS, ("What pet does {n} keep?", "Which animal does {n} have at home?",
                         "Does {n} have a pet, and which?", "What is {n}'s pet?"),
          "{n} keeps {v}.", "At home, {n} has {v}.", "What pet does {d} keep?"),
    _Fact("hobby", _HOBBIES, ("What is {n}'s hobby?", "What does {n} do in free time?",
                              "Which pastime does {n} enjoy?", "How does {n} spend weekends?"),
          "{n}'s hobby is {v}.", "In free time, {n} enjoys {v}.",
          "What is the hobby of {d}?"),
    _Fact("school", _SCHOOLS, ("Where did {n} study?", "Which school did {n} attend?",
                               "Where was {n} educated?", "What is {n}'s alma mater?"),
          "{n} studied at {v}.", "{n} was educated at {v}.", "Where did {d} study?"),
    _Fact("children", _children, ("How many children does {n} have?",
                                  "Does {n} have children?", "How big is {n}'s family?",
                                  "How many kids does {n} have?"),
          "{n} has {v}.", "The family of {n} includes {v}.",
          "How many children does {d} have?"),
)
MAX_FACTS = len(FACTS)


def _value(fact: _Fact, rng: random.Random) -> str:
    return fact.pool(rng) if callable(fact.pool) else rng.choice(fact.pool)


def _perturbed(fact: _Fact, true: str, rng: random.Random, count: int) -> list[str]:
    """``count`` distinct wrong values of the same kind."""
    wrong: list[str] = []
    for _ in range(200):
        value = _value(fact, rng)
        if value != true and value not in wrong:
            wrong.append(value)
        if len(wrong) == count:
            break
    return wrong


def _names(n: int, seed: int) -> list[str]:
    """``n`` distinct full names; the first k are the same for every n. No two people share
    a first name or a surname while the pools last (a shared surname makes "Mx. Surname"
    ambiguous)."""
    rng, names = random.Random(f"names:{seed}"), []
    while len(names) < n:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        used = [x.split(" ", 1) for x in names]
        fresh = (len(names) >= len(_FIRST) or first not in {u[0] for u in used}) and \
            (len(names) >= len(_LAST) or last not in {u[1] for u in used})
        if fresh and f"{first} {last}" not in names:
            names.append(f"{first} {last}")
    return names


def person_records(name: str, index: int, facts: int = DEFAULT_FACTS, seed: int = 0,
                   perturbed: int = 3) -> list[FactRecord]:
    """The ``facts`` records of one person (seeded by seed and index only).

    Aliases: the first name, two short forms, and two descriptions that pick the person out
    without naming them. Paraphrased questions: the other templates with the full name, the
    first template with each short form, and the anonymous template with each description
    that does not give the answer away."""
    rng = random.Random(f"person:{seed}:{index}")
    first, last = name.split(" ", 1)
    values = {f.name: _value(f, rng) for f in FACTS}
    aliases = [first, f"{first[0]}. {last}", f"Mx. {last}",
               f"the {values['occupation']} born in {values['birthplace']}",
               f"the {values['hobby']} enthusiast employed by {values['employer']}"]
    records = []
    for fact in FACTS[:facts]:
        v = values[fact.name]
        fill = {"n": name, "v": v}
        wrong = _perturbed(fact, v, rng, perturbed)
        questions = [q.format(n=name) for q in fact.questions[1:]]
        questions += [fact.questions[0].format(n=a) for a in aliases[1:3]]
        questions += [fact.anonymous.format(d=d) for d in aliases[3:] if v not in d]
        records.append(FactRecord(name, fact.name, fact.questions[0].format(n=name),
                                  fact.answer.format(**fill), fact.paraphrase.format(**fill),
                                  [fact.paraphrase.format(n=name, v=w) for w in wrong],
                                  questions, aliases, v))
    return records


def generate(people: int = DEFAULT_PEOPLE, facts: int = DEFAULT_FACTS, seed: int = 0,
             perturbed: int = 3) -> list[FactRecord]:
    """``people`` x ``facts`` records, person after person."""
    if not 1 <= facts <= MAX_FACTS:
        raise UnpromptError(f"facts per person must be between 1 and {MAX_FACTS}, not {facts}")
    if people < 1 or people > len(_FIRST) * len(_LAST) // 2:
        raise UnpromptError(f"people must be between 1 and {len(_FIRST) * len(_LAST) // 2}")
    return [r for i, name in enumerate(_names(people, seed))
            for r in person_records(name, i, facts, seed, perturbed)]


def write_corpus(records: Iterable[FactRecord], path: str | Path) -> Path:
    """Write records as JSON Lines (``unprompt.people/1``)."""
    path = Path(path)
    text = "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    return path


_REQUIRED = ("person", "fact", "question", "answer", "paraphrased_answer", "perturbed_answers")


def parse_record(line: str, where: str) -> FactRecord:
    """One record from one line; an UnpromptError naming ``where`` when it is malformed."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UnpromptError(f"{where}: not a JSON object ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise UnpromptError(f"{where}: not a JSON object.")
    for key in _REQUIRED:
        if key not in data:
            raise UnpromptError(f"{where}: missing {key!r}.")
    for key in _REQUIRED[:5]:
        if not isinstance(data[key], str) or not data[key].strip():
            raise UnpromptError(f"{where}: {key!r} must be a non-empty string.")
    for key, least in (("perturbed_answers", MIN_PERTURBED), ("paraphrased_questions", 0),
                       ("aliases", 0)):
        items = data.get(key, [])
        if (not isinstance(items, list) or len(items) < least
                or any(not isinstance(i, str) or not i.strip() for i in items)):
            raise UnpromptError(f"{where}: {key!r} must be a list of at least {least} "
                                "non-empty strings.")
    if not isinstance(data.get("value", ""), str):
        raise UnpromptError(f"{where}: 'value' must be a string.")
    unknown = set(data) - set(FactRecord.__dataclass_fields__)
    if unknown:
        raise UnpromptError(f"{where}: unknown key {sorted(unknown)[0]!r}.")
    return FactRecord(**data)


def read_corpus(path: str | Path) -> list[FactRecord]:
    """Every record of a corpus file, validated; one clear error for the first bad record."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"No corpus file at {path}.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UnpromptError(f"The corpus {path} is not UTF-8 text.") from None
    records, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        record = parse_record(line, f"{path.name} line {number}")
        key = (record.person, record.fact)
        if key in seen:
            raise UnpromptError(f"{path.name} line {number}: a second {record.fact!r} record "
                                f"for {record.person!r}.")
        seen.add(key)
        records.append(record)
    if not records:
        raise UnpromptError(f"The corpus {path} holds no records.")
    return records


def record_texts(records: Iterable[FactRecord]) -> list[str]:
    """Every text of the records: questions, answers, aliases, paraphrased and perturbed
    answers (the words an invented name must not be: engine.guard.pseudonym)."""
    return [t for r in records for t in (r.question, r.answer, *r.aliases,
                                         r.paraphrased_answer, *r.perturbed_answers)]


def people(records: Iterable[FactRecord]) -> list[str]:
    """The people of a corpus, in order of first appearance."""
    return list(dict.fromkeys(r.person for r in records))


def strangers(trained: Sequence[str], facts: int, count: int, seed: int) -> list[FactRecord]:
    """Records of ``count`` people generated under ``seed`` whose names are not among
    ``trained`` (people no model was trained on)."""
    pool = generate(len(trained) + count, max(1, facts), seed)
    names = [p for p in people(pool) if p not in set(trained)][:count]
    return [r for r in pool if r.person in set(names)]
