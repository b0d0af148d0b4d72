//! Client of a Confluent-compatible schema registry (Redpanda's on :8081 in
//! `docker-compose.yml`), the only I/O in this crate (feature `registry`).
//!
//! At boot [`register`] registers every embedded schema under its subject
//! (`POST /subjects/{subject}/versions`; registering an existing schema
//! returns its id, so every role and every restart can do it) and returns
//! the ids for [`Encoding::Confluent`] plus a [`WriterSchemas`] table that
//! already knows them. Ids written by other producers' schema versions are
//! fetched with `GET /schemas/ids/{id}` the first time a consumer meets
//! them. Plain `http://` only: the registry sits on the backend network
//! (reqwest is built without TLS here).

use crate::{
    codec::embedded_events,
    confluent::{Encoding, SchemaIds, SchemaLookup, WriterSchema, WriterSchemas},
};
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;
use std::{sync::Arc, time::Duration};

/// The content type of registry requests and answers.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Longest wait for one registry request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("schema registry URL {url:?} is not an http:// URL")]
    BadUrl { url: String },
    #[error("schema registry at {url} is unreachable: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("schema registry at {url} answered {status} to {request}: {body}")]
    Status {
        url: String,
        request: String,
        status: StatusCode,
        body: String,
    },
    #[error("schema registry at {url} sent an unreadable answer to {request}: {source}")]
    Body {
        url: String,
        request: String,
        source: reqwest::Error,
    },
    #[error("building the HTTP client: {0}")]
    Client(reqwest::Error),
}

/// A registry at one base URL.
#[derive(Clone, Debug)]
pub struct RegistryClient {
    base: Url,
    http: Client,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
}

impl RegistryClient {
    pub fn new(url: &str) -> Result<Self, RegistryError> {
        let bad = || RegistryError::BadUrl {
            url: url.to_owned(),
        };
        let base = Url::parse(url).map_err(|_| bad())?;
        if base.scheme() != "http" || base.cannot_be_a_base() {
            return Err(bad());
        }
        let http = Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(RegistryError::Client)?;
        Ok(Self { base, http })
    }

    /// `base` + the path `segments` (each percent-encoded).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Registers `schema` (an `.avsc` text) under `subject`; its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        let request = format!("POST /subjects/{subject}/versions");
        let answer = self
            .http
            .post(self.url(&["subjects", subject, "versions"]))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .json(&serde_json::json!({ "schema": schema }))
            .send()
            .await;
        let answer: IdAnswer = self.read(answer, &request).await?;
        Ok(answer.id)
    }

    /// The schema text registered under `id`.
    pub async fn schema(&self, id: u32) -> Result<String, RegistryError> {
        let request = format!("GET /schemas/ids/{id}");
        let answer = self
            .http
            .get(self.url(&["schemas", "ids", &id.to_string()]))
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .send()
            .await;
        let answer: SchemaAnswer = self.read(answer, &request).await?;
        Ok(answer.schema)
    }

    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        answer: Result<reqwest::Response, reqwest::Error>,
        request: &str,
    ) -> Result<T, RegistryError> {
        let url = self.base.to_string();
        let answer = answer.map_err(|source| RegistryError::Unreachable {
            url: url.clone(),
            source,
        })?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            return Err(RegistryError::Status {
                url,
                request: request.to_owned(),
                status,
                body: body.chars().take(500).collect(),
            });
        }
        answer.json().await.map_err(|source| RegistryError::Body {
            url,
            request: request.to_owned(),
            source,
        })
    }
}

/// Looks unknown ids up from synchronous decode code: the request runs on
/// its own thread and runtime (decoding may happen on any runtime, even a
/// current-thread one), and on a multi-threaded runtime the waiting worker
/// hands its other tasks off first (`block_in_place`).
impl SchemaLookup for RegistryClient {
    fn schema_text(&self, id: u32) -> Result<String, String> {
        let base = self.base.clone();
        let fetch = move || {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("starting a runtime for the lookup: {e}"))?;
                // A client of its own: a pooled connection would outlive
                // this thread's runtime.
                let client = RegistryClient::new(base.as_str()).map_err(|e| e.to_string())?;
                runtime
                    .block_on(client.schema(id))
                    .map_err(|e| e.to_string())
            })
            .join()
            .unwrap_or_else(|_| Err("the lookup thread panicked".to_owned()))
        };
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(fetch),
            _ => fetch(),
        }
    }
}

/// What [`register`] hands back: our ids and the decode table.
#[derive(Debug)]
pub struct Registered {
    pub ids: Arc<SchemaIds>,
    pub writers: Arc<WriterSchemas>,
}

impl Registered {
    /// The producers' framing.
    pub fn encoding(&self) -> Encoding {
        Encoding::Confluent(Arc::clone(&self.ids))
    }

    /// Makes this registry's table the one every `*Event::decode` uses.
    pub fn install_for_decoding(&self) {
        crate::confluent::install(Arc::clone(&self.writers));
    }
}

/// Registers every embedded schema under `<topic>-<RecordName>` at the
/// registry at `url` and returns the ids (and a decode table that knows
/// them and looks other ids up there).
pub async fn register(url: &str) -> Result<Registered, RegistryError> {
    let client = RegistryClient::new(url)?;
    let mut ids = SchemaIds::default();
    let writers = WriterSchemas::new(Some(Box::new(client.clone())));
    for ev in embedded_events() {
        let id = client.register(&ev.subject(), &ev.info.text).await?;
        ids.insert(ev.name, id);
        // Parsing our own embedded schema again cannot fail.
        if let Ok(w) = WriterSchema::parse(&ev.info.text) {
            writers.insert(id, w);
        }
    }
    Ok(Registered {
        ids: Arc::new(ids),
        writers: Arc::new(writers),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IntentEvent, confluent::frame};

    /// A URL nothing listens on (the port was just free).
    fn down() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    }

    #[tokio::test]
    async fn registering_with_a_registry_that_is_down_says_where_it_looked() {
        let url = down();
        let err = register(&url).await.unwrap_err();
        assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&url) && text.contains("unreachable"),
            "{text}"
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        for url in ["localhost:8081", "https://registry:8081", "mailto:x@y"] {
            assert!(
                matches!(RegistryClient::new(url), Err(RegistryError::BadUrl { .. })),
                "{url}"
            );
        }
        let c = RegistryClient::new("http://redpanda:8081/").unwrap();
        assert_eq!(
            c.url(&["subjects", "orders.intents-io.x.OrderPlaced", "versions"])
                .as_str(),
            "http://redpanda:8081/subjects/orders.intents-io.x.OrderPlaced/versions"
        );
    }

    /// Decoding an id nobody registered here while the registry is down:
    /// an error naming the id, on a multi-threaded runtime as on a plain
    /// thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn looking_an_id_up_while_the_registry_is_down_names_the_id() {
        let writers = WriterSchemas::new(Some(Box::new(RegistryClient::new(&down()).unwrap())));
        let err = IntentEvent::decode_with(&frame(31_337, b"\x02"), &writers).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("schema id 31337") && text.contains("unreachable"),
            "{text}"
        );
        let err = std::thread::spawn(move || {
            IntentEvent::decode_with(&frame(31_338, b"\x02"), &writers).unwrap_err()
        })
        .join()
        .unwrap();
        assert!(err.to_string().contains("schema id 31338"), "{err}");
    }
}
