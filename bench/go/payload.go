package main

import "strconv"

// The record values: slices of one 1 MiB pool of word-like text, generated exactly as
// bench/src/payload.rs generates it, so that every client sends the same bytes (the parent
// passes the pool's FNV-1a hash and the worker refuses to run on a different pool).

const poolSize = 1 << 20

var words = []string{
	"order", "id", "customer", "total", "price", "sku", "status", "shipped", "pending", "user",
	"event", "click", "view", "session", "amount", "currency", "EUR", "USD", "true", "false",
	"null", "timestamp", "region", "eu-west", "us-east", "item", "quantity", "warehouse",
}

type payload struct {
	pool []byte
	size int
}

func newPayload(size int) payload {
	pool := make([]byte, 0, poolSize+64)
	state := uint64(0x9e3779b97f4a7c15)
	n := uint64(0)
	for len(pool) < poolSize {
		// xorshift64*, as in payload.rs.
		state ^= state >> 12
		state ^= state << 25
		state ^= state >> 27
		r := state * 0x2545f4914f6cdd1d
		pool = append(pool, words[r%uint64(len(words))]...)
		if r>>60 == 0 {
			n += (r >> 40) & 0xffff
			pool = strconv.AppendUint(pool, n, 10)
		}
		if (r>>58)&3 == 0 {
			pool = append(pool, ',')
		} else {
			pool = append(pool, ' ')
		}
	}
	return payload{pool: pool[:poolSize], size: size}
}

// slice is the value of record i, sharing the pool (no copy).
func (p payload) slice(i uint64) []byte {
	at := (i * 7919) % uint64(poolSize-p.size)
	return p.pool[at : at+uint64(p.size)]
}

// fnv is the 64-bit FNV-1a hash of the pool.
func (p payload) fnv() uint64 {
	h := uint64(0xcbf29ce484222325)
	for _, b := range p.pool {
		h ^= uint64(b)
		h *= 0x100000001b3
	}
	return h
}
