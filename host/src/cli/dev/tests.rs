use super::*;

fn people() -> Directory {
    Directory {
        users: [("ada".to_string(), 42), ("bob".to_string(), 43)]
            .into_iter()
            .collect(),
        roles: vec![(7, "Admin".into()), (8, "Member".into())],
        general: 100,
        bot: (1, "TownesBot".into()),
    }
}

fn word(text: &str) -> Word {
    Word {
        text: text.into(),
        quoted: false,
    }
}

#[test]
fn lines_are_commands_or_said() {
    assert_eq!(parse("!hello"), Ok(Input::Say("!hello".into())));
    assert_eq!(parse("  "), Ok(Input::Nothing));
    assert_eq!(parse("as bob"), Ok(Input::As("bob".into())));
    assert_eq!(parse("say as I said"), Ok(Input::Say("as I said".into())));
    assert!(
        parse("as I said")
            .unwrap_err()
            .starts_with("usage: as <name>")
    );
    assert_eq!(
        parse("/xp set user=@bob"),
        Ok(Input::Slash {
            name: "xp".into(),
            words: vec![word("set"), word("user=@bob")]
        })
    );
    assert_eq!(
        parse("choose color:pick red blue"),
        Ok(Input::Choose {
            custom_id: "color:pick".into(),
            values: vec!["red".into(), "blue".into()]
        })
    );
    assert_eq!(
        parse("modal poll:new question=\"Tea or coffee?\""),
        Ok(Input::Modal {
            custom_id: "poll:new".into(),
            fields: vec![("question".into(), "Tea or coffee?".into())]
        })
    );
    assert!(parse("/").is_err());
    assert!(parse("/echo text=\"open").is_err());
    assert_eq!(parse("quit"), Ok(Input::Quit));
}

#[test]
fn options_are_typed_as_registered() {
    let rank = json!({"name": "rank", "type": 1, "options": [
        {"type": 6, "name": "user"}, {"type": 3, "name": "note"}]});
    let options = slash_options(
        Some(&rank),
        &[word("user=@ada"), word("note=12")],
        &people(),
    )
    .unwrap();
    assert_eq!(
        options,
        json!([{"type": 6, "name": "user", "value": "42"},
               {"type": 3, "name": "note", "value": "12"}])
    );
    let error = slash_options(Some(&rank), &[word("user=@zed")], &people()).unwrap_err();
    assert!(error.contains("takes a member"), "{error}");
}

#[test]
fn subcommands_nest_their_options() {
    let xp = json!({"name": "xp", "type": 1, "options": [
        {"type": 1, "name": "set", "options": [
            {"type": 6, "name": "user"}, {"type": 4, "name": "amount"}]}]});
    let words = [word("set"), word("user=@bob"), word("amount=200")];
    assert_eq!(
        slash_options(Some(&xp), &words, &people()).unwrap(),
        json!([{"type": 1, "name": "set", "options": [
            {"type": 6, "name": "user", "value": "43"},
            {"type": 4, "name": "amount", "value": 200}]}])
    );
    let error = slash_options(Some(&xp), &[word("give")], &people()).unwrap_err();
    assert!(error.contains("there are: set"), "{error}");
}

#[test]
fn unregistered_options_are_guessed() {
    let quoted = Word {
        text: "text=12".into(),
        quoted: true,
    };
    let words = [
        word("n=3"),
        word("yes=true"),
        word("who=@bob"),
        word("role=@member"),
        word("where=#general"),
        word("s=hi"),
        quoted,
    ];
    let options = slash_options(None, &words, &people()).unwrap();
    let kinds: Vec<u64> = options
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_u64().unwrap())
        .collect();
    assert_eq!(kinds, vec![4, 5, 6, 8, 7, 3, 3]);
}

#[test]
fn mentions_show_names() {
    assert_eq!(
        people().render("Hi <@42>, <@!43> and <@99>: <@&8> in <#100> <3"),
        "Hi @ada, @bob and <@99>: @Member in #general <3"
    );
}

#[test]
fn components_say_how_to_use_them() {
    let rows = json!([{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Wave", "custom_id": "hello:wave"},
        {"type": 3, "custom_id": "hello:pick", "options": [{"label": "A", "value": "a"}]}]}]);
    assert_eq!(
        component_lines(&rows),
        vec![
            "click hello:wave   (button \"Wave\")",
            "choose hello:pick <value>…   (menu: a)"
        ]
    );
    let rows = rows.as_array().unwrap();
    assert_eq!(custom_ids(rows), vec!["hello:wave", "hello:pick"]);
}
