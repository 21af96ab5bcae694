// Bare Bun, idle: the floor every figure of bench:node is compared with.
setInterval(() => {}, 1000);
