//! Everything `/8ball`, `/joke` and `/meme` say, bundled in the component.
//!
//! The feature holds no network capability, so nothing can be fetched at run
//! time: what is here is all there is. The jokes and memes were written for
//! this feature (the 8-ball's twenty answers are the traditional ones).

/// The classic twenty answers: ten yes, five maybe, five no.
pub const EIGHT_BALL: [&str; 20] = [
    "It is certain.",
    "It is decidedly so.",
    "Without a doubt.",
    "Yes, definitely.",
    "You may rely on it.",
    "As I see it, yes.",
    "Most likely.",
    "Outlook good.",
    "Yes.",
    "Signs point to yes.",
    "Reply hazy, try again.",
    "Ask again later.",
    "Better not tell you now.",
    "Cannot predict now.",
    "Concentrate and ask again.",
    "Don't count on it.",
    "My reply is no.",
    "My sources say no.",
    "Outlook not so good.",
    "Very doubtful.",
];

/// A joke: a setup and its punchline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Joke {
    pub category: &'static str,
    pub setup: &'static str,
    pub punchline: &'static str,
}

/// The joke categories, in the order `/joke` lists them.
pub const CATEGORIES: [&str; 5] = ["animals", "food", "programming", "puns", "science"];

const fn joke(category: &'static str, setup: &'static str, punchline: &'static str) -> Joke {
    Joke {
        category,
        setup,
        punchline,
    }
}

/// Every joke, clean enough for any server.
pub const JOKES: &[Joke] = &[
    // animals
    joke(
        "animals",
        "What do you call a bear with no teeth?",
        "A gummy bear.",
    ),
    joke(
        "animals",
        "Why do cows wear bells?",
        "Because their horns don't work.",
    ),
    joke(
        "animals",
        "What do you call a dog that does magic tricks?",
        "A labracadabrador.",
    ),
    joke(
        "animals",
        "Why don't cats play cards in the jungle?",
        "Too many cheetahs.",
    ),
    joke(
        "animals",
        "What do you get when you cross a snail with a porcupine?",
        "A slowpoke.",
    ),
    joke(
        "animals",
        "Why did the owl throw a party?",
        "It didn't want to be owl by itself.",
    ),
    joke(
        "animals",
        "What do you call a pile of kittens?",
        "A meowntain.",
    ),
    joke(
        "animals",
        "How do bees get to school?",
        "On the school buzz.",
    ),
    joke(
        "animals",
        "What is a penguin's favourite relative?",
        "Aunt Arctica.",
    ),
    joke(
        "animals",
        "What do you call an alligator in a vest?",
        "An investigator.",
    ),
    // food
    joke(
        "food",
        "Why did the tomato turn red?",
        "It saw the salad dressing.",
    ),
    joke(
        "food",
        "What do you call cheese that isn't yours?",
        "Nacho cheese.",
    ),
    joke(
        "food",
        "Why did the cookie go to the doctor?",
        "It was feeling crummy.",
    ),
    joke(
        "food",
        "Why did the banana go to the doctor?",
        "It wasn't peeling well.",
    ),
    joke(
        "food",
        "Why don't eggs tell each other jokes?",
        "They'd crack each other up.",
    ),
    joke("food", "What do you call a sad strawberry?", "A blueberry."),
    joke(
        "food",
        "How do you fix a broken pizza?",
        "With tomato paste.",
    ),
    joke(
        "food",
        "Why was the soup so rich?",
        "It had plenty of stock.",
    ),
    joke("food", "What did the sushi say to the bee?", "Wasabi!"),
    // programming
    joke(
        "programming",
        "Why did the developer go broke?",
        "They used up all their cache.",
    ),
    joke(
        "programming",
        "Why do programmers prefer dark mode?",
        "Because light attracts bugs.",
    ),
    joke(
        "programming",
        "How many programmers does it take to change a light bulb?",
        "None. That's a hardware problem.",
    ),
    joke(
        "programming",
        "How does a programmer open a jar?",
        "They look for a library that does it.",
    ),
    joke(
        "programming",
        "Why did the database administrator leave the party early?",
        "There were too many joins to keep track of.",
    ),
    joke(
        "programming",
        "What did the variable say to the constant?",
        "You never change, and I love that about you.",
    ),
    joke(
        "programming",
        "Why did the developer bring a ladder to work?",
        "They heard the project needed a higher level of abstraction.",
    ),
    joke(
        "programming",
        "Why don't recursive functions ever get lost?",
        "They always know how to get back to where they started.",
    ),
    joke(
        "programming",
        "Why was the off-by-one error always late?",
        "It kept arriving one step after everyone else.",
    ),
    joke(
        "programming",
        "My code worked on the first try.",
        "Now I'm checking whether the compiler is feeling alright.",
    ),
    // puns
    joke("puns", "I tried to catch some fog this morning.", "I mist."),
    joke(
        "puns",
        "Why was the calendar so nervous?",
        "Its days were numbered.",
    ),
    joke(
        "puns",
        "What do you call a fish wearing a bow tie?",
        "Sofishticated.",
    ),
    joke(
        "puns",
        "Why did the bicycle fall over?",
        "It was two-tired.",
    ),
    joke(
        "puns",
        "I told my houseplant a joke.",
        "It didn't laugh, but it's growing on me.",
    ),
    joke(
        "puns",
        "Why did the belt get arrested?",
        "It held up a pair of trousers.",
    ),
    joke(
        "puns",
        "What did the ocean say to the beach?",
        "Nothing, it just waved.",
    ),
    joke(
        "puns",
        "Why can't a nose be twelve inches long?",
        "Because then it would be a foot.",
    ),
    joke(
        "puns",
        "I'm on a seafood diet.",
        "I see food, and I eat it.",
    ),
    joke(
        "puns",
        "I had a long talk with the pencil sharpener.",
        "It finally got to the point.",
    ),
    // science
    joke(
        "science",
        "Why can't you trust atoms?",
        "They make up everything.",
    ),
    joke(
        "science",
        "What did the thermometer say to the measuring cylinder?",
        "You may have graduated, but I've got more degrees.",
    ),
    joke(
        "science",
        "Why didn't the photon check any luggage?",
        "It was travelling light.",
    ),
    joke(
        "science",
        "I have a new theory about inertia.",
        "It just isn't gaining any momentum.",
    ),
    joke(
        "science",
        "Why did the biologist and the physicist stop dating?",
        "There was no chemistry.",
    ),
    joke(
        "science",
        "Why are chemists so good at problems?",
        "They have all the solutions.",
    ),
    joke(
        "science",
        "Why didn't the Sun go to university?",
        "It already had millions of degrees.",
    ),
    joke(
        "science",
        "What did one tectonic plate say when it bumped into the other?",
        "Sorry, my fault.",
    ),
    joke(
        "science",
        "Why are geologists so relaxed?",
        "They take everything for granite.",
    ),
];

/// A meme as text: a classic format described in words, and its captions.
///
/// Discord shows pictures only from URLs, and a feature that fetches nothing
/// has none to give, so the reader pictures the scene from `scene`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meme {
    /// The format's name.
    pub format: &'static str,
    /// The picture, described.
    pub scene: &'static str,
    pub top: &'static str,
    pub bottom: &'static str,
}

const fn meme(
    format: &'static str,
    scene: &'static str,
    top: &'static str,
    bottom: &'static str,
) -> Meme {
    Meme {
        format,
        scene,
        top,
        bottom,
    }
}

/// Every meme.
pub const MEMES: &[Meme] = &[
    meme(
        "Two buttons",
        "Someone sweats, a finger hovering between two big red buttons.",
        "Go to bed early",
        "Watch one more episode",
    ),
    meme(
        "Calm in the fire",
        "A cartoon dog sips coffee while the room burns around it.",
        "Me with 47 unread messages in the group chat",
        "Everything is under control",
    ),
    meme(
        "No, then yes",
        "A person turns away from the first thing in disgust, then points happily at the second.",
        "Reading the manual",
        "Pressing every button until it works",
    ),
    meme(
        "Surprised cat",
        "A cat stares straight at the camera, eyes perfectly round.",
        "Opening the fridge for the fifth time",
        "Still no new food in there",
    ),
    meme(
        "Is this a…?",
        "A cat squints at something, confidently mistaken.",
        "The expensive new cat bed",
        "Is this… the box it came in?",
    ),
    meme(
        "The plan",
        "Someone presents a four-step plan on a flip chart and freezes at step four.",
        "Step 1: start the homework early",
        "Step 4: it is somehow 11 p.m.",
    ),
    meme(
        "Nobody:",
        "An empty caption above someone doing something for no reason at all.",
        "Nobody:",
        "My dog at 3 a.m.: barks at absolutely nothing",
    ),
    meme(
        "Confident, then not",
        "A person grins at the top line and slowly loses the smile.",
        "I'll remember where I parked",
        "I did not remember where I parked",
    ),
    meme(
        "The floor is…",
        "Everybody leaps onto the furniture.",
        "The floor is",
        "Building bricks in the dark",
    ),
    meme(
        "Achievement unlocked",
        "A game notification slides into the corner of the screen.",
        "Achievement unlocked:",
        "Answered an email the same day",
    ),
    meme(
        "Expectation and reality",
        "Two photos side by side that have nothing in common.",
        "Expectation: a calm Sunday with a book",
        "Reality: four hours reorganising the spice rack",
    ),
    meme(
        "Interrogation",
        "A detective leans across a table under a single lamp.",
        "Where were you when the last cookie disappeared?",
        "The dog, looking innocent, crumbs on his nose",
    ),
    meme(
        "Stuck at 99%",
        "A progress bar that has not moved in an hour.",
        "Motivation to exercise: 99%",
        "Actually exercising: loading…",
    ),
    meme(
        "Big brain",
        "Someone taps their temple with a knowing smile.",
        "You can't lose the remote",
        "if you never put it down",
    ),
    meme(
        "Epic handshake",
        "Two very different arms meet in a mighty handshake.",
        "Cats and programmers",
        "Agreeing that keyboards are for sitting on",
    ),
    meme(
        "Slow realisation",
        "A face goes from calm to alarmed in three panels.",
        "Setting the alarm for seven",
        "Realising it was set for 7 p.m.",
    ),
    meme(
        "Running away",
        "A cartoon character sprints off into the distance, leaving a cloud of dust.",
        "Me when someone says",
        "\"Can I ask you a quick question?\"",
    ),
    meme(
        "Brain at night",
        "Someone tries to sleep while their brain taps them on the shoulder.",
        "Brain at 2 a.m.:",
        "Remember that thing you said in 2014?",
    ),
    meme(
        "Change my mind",
        "A person sits at a table with a sign, inviting debate from passers-by.",
        "Pineapple belongs on pizza",
        "Change my mind",
    ),
    meme(
        "The villain's plan",
        "A cartoon villain reveals a plan on a chalkboard, then spots the flaw.",
        "The plan: eat healthily all week",
        "The flaw: someone brought doughnuts to the office",
    ),
    meme(
        "Trophy cabinet",
        "A gleaming cabinet with a single, tiny trophy.",
        "My greatest achievement",
        "Opened a jar on the first try",
    ),
    meme(
        "Weather forecast",
        "A presenter points at a map covered in little icons.",
        "Today's forecast:",
        "A 100% chance of forgetting why I walked into this room",
    ),
    meme(
        "Slow blink",
        "A person blinks slowly, in complete disbelief.",
        "When the quick meeting",
        "enters its second hour",
    ),
    meme(
        "Hero landing",
        "A superhero lands in a dramatic crouch, cape fluttering.",
        "Me arriving in the kitchen",
        "after hearing a crisp packet open",
    ),
    meme(
        "The scroll of truth",
        "Someone unrolls an ancient scroll, reads it, and flings it away.",
        "The scroll says: drink more water",
        "*throws the scroll*",
    ),
    meme(
        "Museum exhibit",
        "A single object in a glass case with a small brass label.",
        "Extremely rare artefact:",
        "A phone charger that reaches the bed",
    ),
    meme(
        "Strong and small",
        "A muscular dog stands next to a small, nervous one.",
        "Me on Monday, planning a productive weekend",
        "Me on Saturday, still in my pyjamas at noon",
    ),
    meme(
        "The detective's wall",
        "Photos on a wall, joined by red string, and a very tired investigator.",
        "Trying to work out",
        "who ate the last biscuit",
    ),
    meme(
        "Sign on the door",
        "A hand-written note taped to a front door.",
        "Please knock",
        "The dog will announce you anyway",
    ),
    meme(
        "Left on read",
        "A phone screen shows a message marked Seen, and no reply.",
        "Me: are you coming to dinner?",
        "My teenager, two rooms away: Seen 18:02",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_the_size_promised_and_every_entry_is_whole() {
        assert_eq!(EIGHT_BALL.len(), 20);
        assert!(JOKES.len() >= 40, "{} jokes", JOKES.len());
        assert!(MEMES.len() >= 30, "{} memes", MEMES.len());
        for joke in JOKES {
            assert!(CATEGORIES.contains(&joke.category), "{joke:?}");
            assert!(!joke.setup.is_empty() && !joke.punchline.is_empty());
        }
        for category in CATEGORIES {
            let n = JOKES.iter().filter(|j| j.category == category).count();
            assert!(n >= 8, "{category}: {n}");
        }
        for meme in MEMES {
            assert!(!meme.format.is_empty() && !meme.scene.is_empty());
            assert!(!meme.top.is_empty() && !meme.bottom.is_empty());
        }
        let mut setups: Vec<&str> = JOKES.iter().map(|j| j.setup).collect();
        setups.sort_unstable();
        setups.dedup();
        assert_eq!(setups.len(), JOKES.len(), "no joke twice");
        let mut formats: Vec<&str> = MEMES.iter().map(|m| m.format).collect();
        formats.sort_unstable();
        formats.dedup();
        assert_eq!(formats.len(), MEMES.len(), "no format twice");
    }
}
