"""Adapters for RAG frameworks: ``ferrovec.integrations.langchain`` (a LangChain VectorStore)
and ``ferrovec.integrations.llama_index`` (a LlamaIndex vector store). Each imports its
framework, which is an optional dependency."""
