// The SQL API's vocabularies (see vocabulary.hpp).
#include "core/vocabulary.hpp"

namespace thrillmon::vocabulary {

std::optional<std::size_t>
IndexOf(const Vocabulary &v, std::string_view word)
{
	for (std::size_t i = 0; i < v.size; i++)
		if (v.words[i] == word)
			return i;
	return std::nullopt;
}

std::string
Join(const Vocabulary &v, std::string_view separator)
{
	std::string out;
	for (std::size_t i = 0; i < v.size; i++) {
		if (i > 0)
			out += separator;
		out += v.words[i];
	}
	return out;
}

const Vocabulary *
Find(std::string_view name)
{
	for (const Vocabulary &v : kAll)
		if (v.name == name)
			return &v;
	return nullptr;
}

} // namespace thrillmon::vocabulary
