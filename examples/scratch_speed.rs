use isovec::encoder::*;
fn main() {
    let text = std::fs::read_to_string("/work/shared/data/senteval/STS/STSBenchmark/sts-test.csv").unwrap();
    let mut sents: Vec<String> = Vec::new();
    for l in text.lines() { let f: Vec<&str> = l.split('\t').collect(); sents.push(f[5].into()); sents.push(f[6].into()); }
    let refs: Vec<&str> = sents.iter().map(|s| s.as_str()).collect();
    let bs: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(32);
    let enc = Encoder::load(&default_model_dir(), EncoderOptions { batch_size: bs, ..Default::default() }).unwrap();
    for _ in 0..2 {
        let t = std::time::Instant::now();
        let out = enc.encode(&refs, &[Pooling::Mean]).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!("bs {bs}: {} sents in {dt:.2}s = {:.0}/s", out.vectors[0].len(), refs.len() as f64 / dt);
    }
}
