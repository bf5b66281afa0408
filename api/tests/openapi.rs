//! The OpenAPI document describes the routes the server really has.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::spawn_app;
use reqwest::Method;

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let doc = app.request(Method::GET, "/api/openapi.json", None, None).await.expect(200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let concrete = path.replace("{id}", "1");
            let reply = app
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    &concrete,
                    Some(&kim.token),
                    None,
                )
                .await;
            let code = reply.body["error"]["code"].as_str().unwrap_or("");
            assert!(
                !(reply.status == 405
                    || (reply.status == 404
                        && code == "not_found"
                        && reply.body["error"]["message"] == "no such route")),
                "{method} {path} is documented but not routed"
            );
        }
    }
    assert!(operations >= 20, "only {operations} operations documented");
    // The seed's spellings are documented too.
    assert!(paths["/api/tasks/{id}"].get("put").is_some());
    assert!(paths["/api/sign_in"].get("get").is_some());
    // The request and response types are published as schemas.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let reports = ["ReportRequest", "ReportView", "ReportPage", "Figures", "ReportContent", "SeriesPoint", "OpenTask"];
    for schema in ["NewTask", "TaskChange", "TaskView", "ErrorBody", "SignIn", "SignedIn"].into_iter().chain(reports) {
        assert!(schemas.contains_key(schema), "{schema} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let report = serde_json::to_string(&schemas["ReportView"]).unwrap();
    assert!(report.contains("ReportContent"), "a report's figures are documented: {report}");
}
