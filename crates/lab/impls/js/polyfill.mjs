// Promise.withResolvers for Node.js 20: js-libp2p 3.x (through it-queue, from its peer store)
// calls it at start-up, and Node has it only from 22. Loaded with `node --import` before any
// libp2p module, so every module sees it. Same semantics as the ES2024 built-in.
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => {
        resolve = res
        reject = rej
      })
      return { promise, resolve, reject }
    }
  })
}
