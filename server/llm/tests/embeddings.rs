//! all-MiniLM-L6-v2 embeddings on the real model files (`scripts/fetch-models`).

use agora_llm::TextEmbedder;
use agora_llm::backends::minilm::{Embedder, cosine, default_folder};
use std::sync::OnceLock;

fn embedder() -> &'static Embedder {
    static MODEL: OnceLock<Embedder> = OnceLock::new();
    MODEL.get_or_init(|| Embedder::load(&default_folder()).expect("run scripts/fetch-models"))
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let texts = [
        "Marisol is planning a party at the cafe.",
        "There will be a celebration at Willow Cafe organised by Marisol.",
        "The river floods every spring near the old mill.",
    ];
    let v = embedder().embed(&texts).unwrap().vectors;
    assert_eq!(v.len(), 3);
    assert!(v.iter().all(|e| e.len() == 384));
    for e in &v {
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
    }
    let related = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(
        related > 0.5 && related > unrelated + 0.3,
        "related {related}, unrelated {unrelated}"
    );
}

#[test]
fn batching_and_padding_do_not_change_a_vector() {
    let short = "Gabriel is running for mayor.";
    let long = "Gabriel Reyes, the carpenter, has decided to run against Maeve Brennan in the coming election for mayor of Maple Hollow.";
    let alone = embedder().embed(&[short]).unwrap().vectors;
    let together = embedder().embed(&[long, short]).unwrap().vectors;
    let similarity = cosine(&alone[0], &together[1]);
    assert!(
        similarity > 0.9999,
        "padding changed the embedding: {similarity}"
    );
    assert!(embedder().embed(&[]).unwrap().vectors.is_empty());
    // Over-long input is truncated, not an error.
    let huge = "word ".repeat(2000);
    let truncated = embedder().embed(&[huge.as_str()]).unwrap();
    assert_eq!(truncated.vectors.len(), 1);
    // Usage counts the tokens read: at most the cap of 256.
    assert_eq!(truncated.usage.prompt_tokens, 256);
}
