// Completes a prompt greedily with node-llama-cpp (its prebuilt llama.cpp, CPU), printing the text.
//   node complete.mjs MODEL PROMPT N
import { getLlama, LlamaCompletion } from "node-llama-cpp";

const [modelPath, prompt, n] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 256, threads: 2 });
const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
const text = await completion.generateCompletion(prompt, { maxTokens: Number(n), temperature: 0 });
process.stdout.write(JSON.stringify(text) + "\n");
await context.dispose();
await model.dispose();
