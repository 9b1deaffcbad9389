//! The OpenAPI description (`GET /api/v1/openapi.json`, `docs/protocol.md` §10) against the
//! routes actix really serves (`routes::table()`, which every REST route is registered through)
//! both ways, every example in it against its schema, and live answers against theirs.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use switchboard::auth::Role;

use crate::helpers::spawn_app;

async fn served_document() -> Value {
    let app = spawn_app().await;
    let (status, document) = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, 200);
    document
}

#[actix_web::test]
async fn every_rest_route_is_described_and_every_description_is_a_route() {
    let document = served_document().await;
    assert_eq!(document["openapi"], "3.1.0");
    let served: BTreeSet<(String, String)> = switchboard::routes::table()
        .into_iter()
        .map(|(method, path)| (method.as_str().to_lowercase(), path.to_owned()))
        .collect();
    let described: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let undescribed: Vec<_> = served.difference(&described).collect();
    assert!(undescribed.is_empty(), "served but not in the OpenAPI description: {undescribed:?}");
    let unserved: Vec<_> = described.difference(&served).collect();
    assert!(unserved.is_empty(), "described but not served: {unserved:?}");
    assert!(served.len() >= 28, "{served:?}");
    for (method, path) in &described {
        let operation = &document["paths"][path][method];
        assert!(
            operation["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
        assert!(operation["tags"].is_array(), "{method} {path} has a tag");
    }
}

#[actix_web::test]
async fn every_example_matches_its_schema() {
    let document = served_document().await;
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, example: &Value, schema: &Value| {
        checked += 1;
        if let Err(why) = validate(&document, example, schema, "$") {
            failures.push(format!("{what}: {why}"));
        }
    };
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            check(format!("schema {name}"), example, schema);
        }
        for (property, inner) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(example) = inner.get("example") {
                check(format!("schema {name}.{property}"), example, inner);
            }
        }
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let bodies = operation["requestBody"]["content"].as_object().into_iter().flatten();
            for (kind, content) in bodies {
                if let Some(example) = content.get("example") {
                    check(format!("{method} {path} request {kind}"), example, &content["schema"]);
                }
            }
            for (status, response) in operation["responses"].as_object().unwrap() {
                for (kind, content) in response["content"].as_object().into_iter().flatten() {
                    if let Some(example) = content.get("example") {
                        let what = format!("{method} {path} {status} {kind}");
                        check(what, example, &content["schema"]);
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25, "only {checked} examples");
}

#[actix_web::test]
async fn live_answers_match_their_schemas() {
    let app = spawn_app().await;
    let (_, document) = app.get("/api/v1/openapi.json", None).await;
    let token = app.token("ann", Role::Agent, "acme");
    let admin = app.token("boss", Role::Admin, "acme");
    let _ws = app.agent("ann", "acme").await;
    for (path, who, status) in [
        ("/healthz", None, "200"),
        ("/readyz", None, "200"),
        ("/api/v1/ws/status", None, "200"),
        ("/api/v1/me", Some(&token), "200"),
        ("/api/v1/ws/clients", Some(&admin), "200"),
        ("/api/v1/calls", Some(&token), "200"),
        ("/api/v1/conversations", Some(&token), "200"),
        ("/api/v1/calendar", Some(&token), "200"),
        ("/api/v1/webrtc/config", None, "200"),
        ("/api/v1/calls", None, "401"),
    ] {
        let (got, body) = app.get(path, who.map(String::as_str)).await;
        assert_eq!(got.as_str(), status, "{path}: {body}");
        let schema = &document["paths"][path]["get"]["responses"][status]["content"]["application/json"]
            ["schema"];
        assert!(schema.is_object(), "{path} {status} has a schema");
        validate(&document, &body, schema, "$")
            .unwrap_or_else(|why| panic!("{path}: {why}\n{body}"));
    }
}

/// Checks `value` against `schema` — the part of JSON Schema utoipa emits: `$ref`, `type` (one or
/// a list, `null` included), `enum`, `properties` / `required`, `items`, `allOf` / `oneOf` /
/// `anyOf`. Stricter than JSON Schema in one way: an object may not carry a property its schema
/// does not name, so an example that drifted from the type fails.
fn validate(document: &Value, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(document, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        return validate(document, value, &merge_all_of(document, parts), at);
    }
    if let Some(options) = schema["oneOf"].as_array().or(schema["anyOf"].as_array()) {
        if options.iter().any(|o| validate(document, value, o, at).is_ok()) {
            return Ok(());
        }
        return Err(format!("{at}: {value} matches none of {}", Value::Array(options.clone())));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {}", Value::Array(allowed.clone())));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()), // any value
    };
    let fits = types.iter().any(|t| match (*t, value) {
        ("null", Value::Null) | ("boolean", Value::Bool(_)) | ("string", Value::String(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Value::Number(_))
        | ("object", Value::Object(_))
        | ("array", Value::Array(_)) => true,
        _ => false,
    });
    if !fits {
        return Err(format!("{at}: {value} is not {types:?}"));
    }
    match value {
        Value::Object(object) => check_object(document, object, &schema, at),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(i, item)| {
            schema
                .get("items")
                .map_or(Ok(()), |s| validate(document, item, s, &format!("{at}[{i}]")))
        }),
        _ => Ok(()),
    }
}

fn check_object(
    document: &Value,
    object: &Map<String, Value>,
    schema: &Value,
    at: &str,
) -> Result<(), String> {
    let Some(properties) = schema["properties"].as_object() else { return Ok(()) };
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !object.contains_key(required) {
            return Err(format!("{at}: missing {required}"));
        }
    }
    for (key, inner) in object {
        let Some(property) = properties.get(key) else {
            return Err(format!("{at}: {key} is not in the schema"));
        };
        validate(document, inner, property, &format!("{at}.{key}"))?;
    }
    Ok(())
}

/// Follows `$ref`s into `#/components/schemas`.
fn resolve(document: &Value, schema: &Value) -> Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document.pointer(pointer).unwrap_or_else(|| panic!("dangling {reference}")),
            )
        }
        None => schema.clone(),
    }
}

/// `allOf` as one object schema: the parts' properties and required lists together.
fn merge_all_of(document: &Value, parts: &[Value]) -> Value {
    let (mut properties, mut required) = (Map::new(), Vec::new());
    for part in parts {
        let part = resolve(document, part);
        let part = match part["allOf"].as_array() {
            Some(inner) => merge_all_of(document, inner),
            None => part,
        };
        properties.extend(part["properties"].as_object().cloned().unwrap_or_default());
        required.extend(part["required"].as_array().cloned().unwrap_or_default());
    }
    json!({"type": "object", "properties": properties, "required": required})
}
