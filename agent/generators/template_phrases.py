"""Phrase tables for the offline template generator (see :mod:`agent.generators.template`).

Every phrasing is a ``str.format`` template. The slots a template may use are filled per post:

- ``{topic}`` / ``{Topic}`` (capitalised for a sentence start), ``{niche}``;
- numbers: ``{n}`` (3-7), ``{pct}``, ``{pct2}`` (percentages), ``{small}`` (a small percentage),
  ``{x}`` (a multiplier such as "2x");
- time: ``{weeks}``, ``{years}``, ``{mins}``, ``{mins_adj}``, ``{secs}``, ``{cadence}``;
- ``{client}`` / ``{Client}`` (who a case study is about), ``{result}`` (a clause: "the numbers
  doubled"), ``{gain}`` (a noun phrase: "half the hours");
- ``{persona_as}`` ("As a solo founder"), only when the persona is short enough to quote; a
  phrasing that uses it is skipped otherwise;
- ``{content_label}``: the content type's name, humanised (used by the generic fallbacks);
- ``{count}``: the number of items, in list intros only.

Topics are written in as the user gave them and read best as the name of an activity or a subject
("cold email", "pricing", "customer interviews"), so phrasings avoid making ``{topic}`` the
subject of a verb (no agreement to get wrong) or an adjective in front of another noun.

A phrasing placed after a label ("The fix: ...", "Lesson: ...") is lower-cased at its first letter
by the generator, so these tables write every sentence as a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BAB_AFTER",
    "BAB_BEFORE",
    "BAB_BEFORE_LABEL",
    "BAB_BRIDGE_LABELS",
    "CONTENT",
    "CTAS",
    "CURIOSITY_BUILDS",
    "CURIOSITY_REVEAL_LABELS",
    "CURIOSITY_TEASES",
    "GENERIC_CLOSERS",
    "GENERIC_CONTENT",
    "GENERIC_HOOKS",
    "HOOKS",
    "HOT_TAKE_LABELS",
    "PAS_AGITATE",
    "PAS_PROBLEMS",
    "PAS_SOLVE_LABELS",
    "PROOF_LABELS",
    "SLOT_VALUES",
    "STORY_LESSON_LABELS",
    "STORY_TURNS",
    "ContentPhrases",
]


# --- slot fillers -------------------------------------------------------------------------------

SLOT_VALUES: dict[str, tuple[str, ...]] = {
    "n": ("3", "4", "5", "6", "7"),
    "pct": ("18", "23", "31", "38", "42", "57", "64", "71", "80"),
    "pct2": ("40", "45", "55", "60", "65", "70"),
    "small": ("10", "15", "20"),
    "x": ("2x", "3x", "4x", "nearly 2x"),
    "weeks": ("two weeks", "three weeks", "30 days", "six weeks", "a month", "90 days"),
    "years": ("two years", "three years", "years", "most of last year"),
    "mins": ("five minutes", "ten minutes", "15 minutes", "20 minutes"),
    "mins_adj": ("5-minute", "10-minute", "15-minute"),
    "secs": ("30 seconds", "60 seconds", "one minute"),
    "cadence": ("every Friday", "once a week", "every Monday", "every two weeks"),
    "client": (
        "a five-person startup",
        "a solo consultant",
        "a small agency",
        "a seed-stage team",
        "a founder I advise",
        "a two-person studio",
    ),
    # These two may use the slots above.
    "result": (
        "the numbers doubled",
        "results went up while the hours went down",
        "things finally started compounding",
        "results jumped {x}",
    ),
    "gain": (
        "{x} the results",
        "half the hours for better results",
        "{x} the output with the same effort",
        "results up, hours down",
    ),
}


# --- hooks: the opening line --------------------------------------------------------------------

HOOKS: dict[str, tuple[str, ...]] = {
    "bold_claim": (
        "Nothing in {niche} is as underrated as getting {topic} right.",
        "You can get noticeably better at {topic} in {weeks}.",
        "Most people overcomplicate {topic}. It's simpler than it looks.",
        "Most people in {niche} quietly lose the game on {topic}.",
        "Get {topic} right and half your other problems disappear.",
    ),
    "surprising_stat": (
        "{pct}% of my effort on {topic} never showed up in the results.",
        "I tracked my {topic} for {weeks}. {pct}% of it was wasted.",
        "Only {small}% of my work on {topic} drove most of the results.",
        "One number changed how I do {topic}: {pct}%.",
    ),
    "direct_question": (
        "What's actually holding your {topic} back?",
        "Be honest: when did you last rethink how you do {topic}?",
        "Why does getting {topic} right feel harder than it should?",
        "If you had to start {topic} from zero tomorrow, what would you do first?",
        "Is your work on {topic} paying off, or just keeping you busy?",
    ),
    "common_mistake": (
        "The most common mistake with {topic} in {niche}: doing more of what isn't working.",
        "Stop treating {topic} as something you'll get to later.",
        "Most people get {topic} wrong at the very first step.",
        "The mistake I made with {topic} for {years}, so you don't have to.",
        "Not getting results from {topic}? Check this mistake first.",
    ),
    "myth_buster": (
        "Myth: getting {topic} right takes more time. Reality: it takes more focus.",
        '"You have to be a natural at {topic}." You don\'t.',
        "Let's kill a popular myth about {topic}.",
        "The biggest myth in {niche}? That more time on {topic} means better results.",
        "No, you don't need a big budget to get {topic} right.",
    ),
    "personal_confession": (
        "Confession: I got {topic} wrong for {years}.",
        "I'll admit it: I used to avoid {topic} entirely.",
        "I wasted {weeks} on {topic} before anything clicked.",
        "Embarrassing but true: I ignored {topic} for {years}.",
        "{persona_as}, I was bad at {topic} for longer than I like to admit.",
    ),
    "time_promise": (
        "Give me {secs} and I'll change how you think about {topic}.",
        "A {mins_adj} upgrade to your {topic}.",
        "Read this in under a minute. Use it for years.",
        "The fastest win for your {topic} this week:",
        "Fix your {topic} in {mins}. Here's how.",
    ),
    "contrarian_opening": (
        "Unpopular opinion: most advice on {topic} makes things worse.",
        "Everyone in {niche} says to do more {topic}. I disagree.",
        "Hot take: you don't need better tactics for {topic}.",
        "I'm going against the grain on {topic}.",
        "The standard playbook for {topic} is backwards.",
    ),
}

GENERIC_HOOKS: tuple[str, ...] = (  # for hook names the tables do not know
    "Let's talk about {topic}.",
    "A few thoughts on {topic} for anyone in {niche}.",
    "Something I keep noticing about {topic}:",
    "On {topic}:",
    "Quick one on {topic}.",
)


# --- content types: the angle that fills the formula's shape -----------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPhrases:
    """What one content type brings to a post; the formula decides where each piece goes.

    ``insights`` are takeaways (they follow labels such as "The fix:" or "Lesson:"), ``proofs``
    are evidence, ``scenes`` set up a situation or a story, ``points`` are list items (kept in
    table order when several are used, so story beats stay chronological). When ``asks`` is not
    empty the post always ends with one of them instead of an optional closer.
    """

    points: tuple[str, ...]
    insights: tuple[str, ...]
    proofs: tuple[str, ...]
    scenes: tuple[str, ...]
    list_intros: tuple[str, ...]
    closers: tuple[str, ...]
    asks: tuple[str, ...] = ()


CONTENT: dict[str, ContentPhrases] = {
    "how_to": ContentPhrases(
        points=(
            "Write down the one outcome {topic} should drive.",
            "Block {mins} on the calendar, same time every day.",
            "Keep a swipe file of what already worked.",
            "Change one variable at a time.",
            "Cut any step you can't connect to a result.",
            "Review it {cadence} and adjust.",
        ),
        insights=(
            "Define the outcome, do the smallest version, review it {cadence}.",
            "Turn {topic} into a checklist and follow it even on the days you don't feel like it.",
            "Do the one step that moves the number, daily, for {weeks}.",
            "Copy a structure that already works, then change one thing at a time.",
        ),
        proofs=(
            "That routine took me from guessing to {x} better results in {weeks}.",
            "Once the steps were written down, {result}.",
            "Within {weeks} it stopped being a chore and started compounding.",
        ),
        scenes=(
            "I used to treat {topic} as something I'd get to when I had time.",
            "Every week I started {topic} from a blank page.",
            "My process for {topic} was a mess of tabs, notes and good intentions.",
        ),
        list_intros=(
            "{count} steps to better {topic}:",
            "How I'd do {topic} from scratch, in {count} steps:",
            "The routine, step by step:",
        ),
        closers=("Simple. Not easy.", "Do step one today.", "Save it and run it this week."),
    ),
    "contrarian_take": ContentPhrases(
        points=(
            "More volume won't fix {topic}.",
            "Best practices are mostly average practices.",
            "Copying big accounts copies their context, not their results.",
            'Most "hacks" for {topic} stop working the week they go viral.',
            "Tools are rarely the bottleneck.",
            "Consistency only helps if you're consistent at the right thing.",
        ),
        insights=(
            "Spend less time on {topic}, deliberately. Volume is the playbook's answer, not yours.",
            "Ignore what everyone in {niche} copies and test what nobody bothers to.",
            "Treat {topic} as a judgement game, not a volume game.",
            "Break one rule of {topic} on purpose and measure what happens.",
        ),
        proofs=(
            "I halved the time I spend on {topic} and {result}.",
            "The best people I know in {niche} break at least one rule on purpose.",
            "When I stopped following the playbook, {result}.",
        ),
        scenes=(
            "For a year I did {topic} exactly the way the playbooks said.",
            "I followed every rule about {topic} I could find. It was exhausting, and flat.",
            "Everyone around me in {niche} did {topic} the same way, so I did too.",
        ),
        list_intros=(
            "{count} rules about {topic} I ignore on purpose:",
            "{count} uncomfortable truths about {topic}:",
            "What the playbooks get wrong:",
        ),
        closers=("Disagree? Tell me why.", "Change my mind.", "Question the playbook."),
    ),
    "data_point": ContentPhrases(
        points=(
            "{pct}% of the results came from {small}% of the work.",
            "Consistent weeks beat bursty ones by {x}.",
            "{pct2}% of what I tried moved nothing.",
            "Median time to a visible result: {weeks}.",
            "The best performer took the least effort.",
            "Ideas I reviewed {cadence} paid off {x} more often.",
        ),
        insights=(
            "Find the {small}% of your work on {topic} that drives the results. Cut the rest.",
            "Count before you optimise: a simple log of your work on {topic} beats expert opinion.",
            "Track one number for {topic} weekly. Patterns show up faster than you'd think.",
        ),
        proofs=(
            "Over {weeks}, {pct2}% of what I tried moved nothing. The rest did all the work.",
            "In my own numbers, consistent weeks did {x} better than bursty ones.",
            "{n} experiments in, the pattern hasn't changed once.",
        ),
        scenes=(
            "I started logging every experiment I ran on {topic} in a spreadsheet.",
            "I stopped trusting my gut on {topic} and started counting.",
            "For {weeks} I tracked every decision I made on {topic} and what it produced.",
        ),
        list_intros=(
            "{count} numbers from {weeks} of tracking my {topic}:",
            "What my data on {topic} says:",
            "The numbers, {count} of them:",
        ),
        closers=(
            "Measure before you optimise.",
            "Count, don't guess.",
            "Your numbers will differ. Track them anyway.",
        ),
    ),
    "personal_story": ContentPhrases(
        points=(
            "I said yes to every shiny idea.",
            "I measured nothing.",
            "I burned out by week {n}.",
            "I picked one thing and stuck with it.",
            "I started writing down what worked.",
            "I asked someone better than me for feedback.",
        ),
        insights=(
            "Doing {topic} the same way every week beat every clever tactic I tried.",
            "Being busy with {topic} and being good at it are different things.",
            "Stop borrowing other people's playbooks for {topic}. Build your own.",
        ),
        proofs=(
            "Within {weeks}, {result}.",
            "It's the reason I still enjoy {topic} today.",
            "I went from dreading {topic} to looking forward to it.",
        ),
        scenes=(
            "{persona_as}, I spent {years} treating {topic} as an afterthought.",
            "Two years ago my approach to {topic} was a mess, and I knew it.",
            "I almost quit {topic} last year.",
            "My first attempts at {topic} were embarrassing.",
        ),
        list_intros=(
            "How it went, in {count} beats:",
            "My story with {topic}, short version:",
            "What happened:",
        ),
        closers=(
            "Your path will look different. Start anyway.",
            "Still learning.",
            "Glad I stayed.",
        ),
    ),
    "case_study": ContentPhrases(
        points=(
            "They picked one metric and ignored the rest.",
            "They dropped {n} low-value tasks.",
            "They rewrote their process for {topic} on one page.",
            "They shipped smaller, more often.",
            "They reviewed results {cadence}.",
            "They stopped copying competitors.",
        ),
        insights=(
            "Fewer tasks, one metric, one weekly review. That's what worked.",
            "A one-page process for {topic} beat their 40-tab system.",
            "Stop adding effort and start removing steps.",
        ),
        proofs=(
            "After {weeks}: {gain}.",
            "{Client} saw {gain} within {weeks}.",
            "Within {weeks}, {result}.",
        ),
        scenes=(
            "{Client} came to me stuck: lots of effort on {topic}, little to show for it.",
            "{Client} was doing {topic} every day and getting nowhere.",
            "I looked at how {client} handled {topic}. All effort, no system.",
        ),
        list_intros=(
            "What {client} changed, in {count} moves:",
            "How {client} turned their {topic} around:",
            "The {count} changes that mattered:",
        ),
        closers=(
            "Same playbook works for solo operators.",
            "Steal their process.",
            "Context matters, but the pattern repeats.",
        ),
    ),
    "tool_review": ContentPhrases(
        points=(
            "Setup took {mins}.",
            "It does one thing well and stays out of the way.",
            "The free tier is enough for most people.",
            "It replaced {n} tabs I had open every day.",
            "The learning curve is real for the first week.",
            "Skip it if a spreadsheet already does the job.",
        ),
        insights=(
            "Pick the boring, cheap tool that does one job well.",
            "Fix the process first; then a tool makes {topic} faster.",
            "The simplest tool won. Fewer features meant I actually used it.",
        ),
        proofs=(
            "After {weeks} with it, I spend half the time on {topic} for the same output.",
            "It paid for itself in the first {weeks}.",
            "It replaced {n} apps I used for {topic}.",
        ),
        scenes=(
            "I tried {n} tools for {topic} in {weeks}.",
            "The stack I used for {topic} had grown to {n} apps. I used two.",
            "I finally replaced the spreadsheet I used for {topic}.",
        ),
        list_intros=(
            "{count} notes after {weeks} with a new tool for {topic}:",
            "An honest tool review, {topic} edition:",
            "The verdict, in {count} lines:",
        ),
        closers=(
            "Tools amplify habits. Pick the habit first.",
            "Not sponsored. Just useful.",
            "Cheap beats clever.",
        ),
    ),
    "question": ContentPhrases(
        points=(
            "What would you stop doing first?",
            "Which habit gives you the most for the least?",
            "Where do you lose the most time?",
            "What do you measure, if anything?",
            "What would you tell yourself a year ago?",
            "Which rule do you break on purpose?",
        ),
        insights=(
            "Most problems with {topic} are really focus problems.",
            "Everyone does {topic} differently, and the differences are where the lessons are.",
            "There's no single right way to do {topic}, but there are clearly wrong ones.",
        ),
        proofs=(
            "I've asked {n} people in {niche} and got {n} different answers.",
            "The best answers I've heard so far all involve doing less.",
            "Every good answer I've heard starts with one boring habit.",
        ),
        scenes=(
            "I've been rethinking how I approach {topic}.",
            "Someone asked how I'd do {topic} from scratch. I didn't have a clean answer.",
            "I keep seeing {topic} done {n} different ways in {niche}.",
        ),
        list_intros=(
            "{count} questions worth asking about your {topic}:",
            "Questions I'm asking myself about {topic}:",
            "Answer any of these:",
        ),
        closers=(),
        asks=(
            "What's the one habit around {topic} you'd never give up?",
            "Is getting {topic} right a skill or a system? Tell me below.",
            "What would you add?",
            "Which one hits closest to home?",
            "What's worked for you?",
        ),
    ),
}

GENERIC_CONTENT = ContentPhrases(  # for content type names the tables do not know
    points=(
        "Start smaller than feels useful.",
        "Measure one thing.",
        "Review it {cadence}.",
        "Cut what doesn't earn its place.",
        "Keep what works, even when it's boring.",
    ),
    insights=(
        "Treat {topic} as a system, not a mood.",
        "Small, consistent work on {topic} beats occasional bursts.",
        "Keep what works in {topic} and drop the rest without guilt.",
    ),
    proofs=(
        "Within {weeks}, {result}.",
        "It has held up every time I've tried it on {topic}.",
    ),
    scenes=(
        "I've been thinking a lot about {topic} lately.",
        "Every conversation I have in {niche} comes back to {topic}.",
    ),
    list_intros=("{count} notes on {topic}:", "A quick {content_label} on {topic}:"),
    closers=(),
)


# --- formulas: the shape of the body ------------------------------------------------------------

PAS_PROBLEMS: tuple[str, ...] = (
    "The problem: hours go into {topic}, and little comes out.",
    "Most of the effort that goes into {topic} disappears without a trace.",
    "You put real time into {topic}. The results don't match.",
    "Working on {topic} can feel like pushing a boulder uphill.",
)
PAS_AGITATE: tuple[str, ...] = (
    "The longer it goes on, the more it costs you.",
    "Meanwhile others in {niche} pull ahead with less effort.",
    "So you do more of it, and it gets worse.",
    "Every week it stays this way, it gets harder to change.",
)
PAS_SOLVE_LABELS: tuple[str, ...] = ("The fix: ", "What works: ", "The way out: ", "What helped: ")

BAB_BEFORE_LABEL = "Before: "
BAB_BEFORE: tuple[str, ...] = (
    "Before: random effort on {topic}, and a lot of hope.",
    "Before: busy every day, nothing to show for it.",
)
BAB_AFTER: tuple[str, ...] = (
    "After: {gain}.",
    "After: a routine for {topic} that runs itself.",
    "After: {result}.",
    "After: work on {topic} I actually look forward to.",
)
BAB_BRIDGE_LABELS: tuple[str, ...] = ("The bridge: ", "What changed: ", "How: ")

HOT_TAKE_LABELS: tuple[str, ...] = ("", "My take: ", "Here's my take: ")
PROOF_LABELS: tuple[str, ...] = ("Proof: ", "Receipts: ", "Why I'm sure: ")

CURIOSITY_TEASES: tuple[str, ...] = (
    "There's one thing about {topic} almost nobody in {niche} talks about.",
    "It took me {years} to notice this about {topic}.",
    "The gap between good and great at {topic} isn't where you'd expect.",
    "Most people miss the part of {topic} that matters.",
)
CURIOSITY_BUILDS: tuple[str, ...] = (
    "It's not a tactic. It's not a tool.",
    "It's not what the courses teach.",
    "And it costs nothing.",
)
CURIOSITY_REVEAL_LABELS: tuple[str, ...] = ("Here it is: ", "It's this: ", "The answer: ")

STORY_TURNS: tuple[str, ...] = (
    "Then I changed one thing.",
    "Then something clicked.",
    "So I tried the opposite.",
    "Then someone asked me a simple question.",
)
STORY_LESSON_LABELS: tuple[str, ...] = (
    "Lesson: ",
    "The lesson: ",
    "What I took from it: ",
    "Takeaway: ",
)


# --- endings ------------------------------------------------------------------------------------

GENERIC_CLOSERS: tuple[str, ...] = (
    "Small change, big difference.",
    "That's the whole trick.",
    "Boring works.",
    "Steal this.",
    "Try it this week and tell me what changes.",
)
CTAS: tuple[str, ...] = (
    "Follow for more on {niche}.",
    "Save this for the next time you work on {topic}.",
    "Repost for someone in {niche} who needs it.",
    "More like this every week. Follow along.",
)
