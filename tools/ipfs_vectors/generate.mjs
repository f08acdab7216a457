// Generates the IPFS CID conformance vectors for bmoe.storage.cid.
//
// The JS reference importer (ipfs-unixfs-importer) is configured like
// `ipfs add --cid-version 1` in kubo: CIDv1, raw leaves, fixed-size chunker,
// balanced layout, single-chunk files reduced to their raw leaf.  Inputs are
// produced by deterministic generators that tests/storage re-implements in
// Python, so the tests only read the JSON and never need node.
//
// Usage: see README.md next to this file.
import { createHash } from 'node:crypto'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'

const KIB256 = 262144
const KUBO = { chunk_size: KIB256, max_links: 174 }

// --- deterministic input generators (mirrored in tests/storage/test_storage_cid.py) ---
function generate (gen) {
  if (gen.kind === 'literal') {
    return new TextEncoder().encode(gen.text)
  }
  if (gen.kind === 'mod251') {
    // byte i is i % 251
    const out = new Uint8Array(gen.n)
    for (let i = 0; i < gen.n; i++) out[i] = i % 251
    return out
  }
  if (gen.kind === 'sha256ctr') {
    // sha256(utf8(seed) || uint64_be(counter)) for counter = 0, 1, ... concatenated, truncated to n
    const out = new Uint8Array(gen.n)
    const seed = Buffer.from(gen.seed, 'utf8')
    let off = 0
    for (let ctr = 0n; off < gen.n; ctr++) {
      const c = Buffer.alloc(8)
      c.writeBigUInt64BE(ctr)
      const d = createHash('sha256').update(seed).update(c).digest()
      const take = Math.min(d.length, gen.n - off)
      out.set(d.subarray(0, take), off)
      off += take
    }
    return out
  }
  throw new Error(`unknown generator ${gen.kind}`)
}

const cases = [
  { name: 'empty', generator: { kind: 'literal', text: '' }, ...KUBO },
  { name: 'hello_world', generator: { kind: 'literal', text: 'hello world\n' }, ...KUBO },
  { name: 'one_byte_short_of_chunk', generator: { kind: 'mod251', n: KIB256 - 1 }, ...KUBO },
  { name: 'exactly_one_chunk', generator: { kind: 'mod251', n: KIB256 }, ...KUBO },
  { name: 'one_chunk_plus_one_byte', generator: { kind: 'mod251', n: KIB256 + 1 }, ...KUBO },
  { name: 'two_chunks_random', generator: { kind: 'sha256ctr', seed: 'bmoe', n: 2 * KIB256 }, ...KUBO },
  { name: 'three_mib_random', generator: { kind: 'sha256ctr', seed: 'bmoe', n: 3 * 1048576 + 12345 }, ...KUBO },
  { name: 'full_174_links', generator: { kind: 'mod251', n: 174 * KIB256 }, ...KUBO },
  { name: 'depth2_174_chunks_plus_one_byte', generator: { kind: 'mod251', n: 174 * KIB256 + 1 }, ...KUBO },
  // Small chunk / fan-out parameters exercise deeper balanced trees cheaply.
  { name: 'small_c1024_l4_one_chunk', generator: { kind: 'sha256ctr', seed: 'small', n: 1024 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1024_l4_full_depth1', generator: { kind: 'sha256ctr', seed: 'small', n: 4 * 1024 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1024_l4_depth2', generator: { kind: 'sha256ctr', seed: 'small', n: 4 * 1024 + 1 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1024_l4_full_depth2', generator: { kind: 'sha256ctr', seed: 'small', n: 16 * 1024 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1024_l4_depth3', generator: { kind: 'sha256ctr', seed: 'small', n: 16 * 1024 + 1 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1024_l4_depth4_ragged', generator: { kind: 'sha256ctr', seed: 'small', n: 70 * 1024 + 333 }, chunk_size: 1024, max_links: 4 },
  { name: 'small_c1000_l3_depth5', generator: { kind: 'mod251', n: 100000 }, chunk_size: 1000, max_links: 3 },
  { name: 'small_c251_l5_duplicate_leaves', generator: { kind: 'mod251', n: 251 * 12 }, chunk_size: 251, max_links: 5 },
  { name: 'small_c7_l2_binary', generator: { kind: 'literal', text: 'the quick brown fox jumps over the lazy dog' }, chunk_size: 7, max_links: 2 }
]

class RecordingBlockstore {
  constructor () { this.blocks = new Map() }
  async put (cid, bytes) { this.blocks.set(cid.toString(), bytes); return cid }
}

const out = []
for (const c of cases) {
  const data = generate(c.generator)
  const store = new RecordingBlockstore()
  let root
  for await (const entry of importer([{ content: data }], store, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize: c.chunk_size }),
    layout: balanced({ maxChildrenPerNode: c.max_links }),
    wrapWithDirectory: false
  })) {
    root = entry
  }
  const cids = [...store.blocks.keys()].sort()
  out.push({
    name: c.name,
    generator: c.generator,
    length: data.length,
    chunk_size: c.chunk_size,
    max_links: c.max_links,
    cid: root.cid.toString(),
    dag_size: Number(root.size),
    block_count: cids.length,
    block_cids_sha256: createHash('sha256').update(cids.join('\n')).digest('hex')
  })
}

const doc = {
  description: 'CIDs of `ipfs add --cid-version 1` (kubo defaults: raw leaves, fixed-size chunker, balanced ' +
    'layout, sha2-256, base32) computed by the JS reference importer; see tools/ipfs_vectors/README.md.',
  generators: {
    literal: 'UTF-8 bytes of `text`',
    mod251: 'n bytes, byte i = i % 251',
    sha256ctr: 'sha256(utf8(seed) || uint64_be(counter)) for counter = 0, 1, ... concatenated, truncated to n bytes'
  },
  fields: {
    dag_size: 'cumulative serialized size of all blocks in the DAG (the Tsize a parent link would carry)',
    block_count: 'number of distinct blocks (identical leaves counted once)',
    block_cids_sha256: 'hex sha256 of the sorted distinct block CIDs joined with "\\n"'
  },
  importer: 'ipfs-unixfs-importer@17.1.1 {cidVersion: 1, rawLeaves: true, reduceSingleLeafToSelf: true, ' +
    'chunker: fixedSize(chunk_size), layout: balanced(max_links)}',
  vectors: out
}
process.stdout.write(JSON.stringify(doc, null, 2) + '\n')
